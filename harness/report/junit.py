"""junit.xml for CI systems: one testcase per cell, classname = image.

An outcome that did not meet its expectation (fail, xpass, unstable) is a failure
(message: stage and reason), the host's error is an error, and what met it without a
pass (skip, xfail) is skipped, as pytest reports xfail; the console's tail goes
into system-out so the CI page shows why without opening the log.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from harness.console.text import clean
from harness.model import Outcome

if TYPE_CHECKING:
    from harness.records import CellEntry

TAIL_LINES = 40
# XML 1.0 cannot hold most control characters, which console logs are full of.
_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd]")


def console_tail(log: Path, lines: int = TAIL_LINES) -> str:
    try:
        with log.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    text = clean(text).replace("\r\n", "\n").replace("\r", "\n")  # as the watcher reads it
    return _NOT_XML.sub("", "\n".join(text.splitlines()[-lines:]))


def write_junit(path: Path, run_dir: Path, profile: str, final: list[CellEntry]) -> None:
    counts = Counter(_element(Outcome(r["outcome"])) for r in final)
    suite = ET.Element(
        "testsuite",
        name=f"harness.{profile}",
        tests=str(len(final)),
        failures=str(counts["failure"]),
        errors=str(counts["error"]),
        skipped=str(counts["skipped"]),
        time=f"{sum(r.get('duration_s') or 0 for r in final):.1f}",
    )
    for record in final:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=record["image"],
            name=f"{record['firmware']}/{record['machine']}/{record['transport']}",
            time=f"{record.get('duration_s') or 0:.1f}",
        )
        message = _clean(f"{record['stage']} {record['reason']}: {record.get('detail') or ''}")
        outcome = Outcome(record["outcome"])
        element = _element(outcome)
        if element == "failure":
            ET.SubElement(case, "failure", message=message, type=outcome.value)
        elif element == "error":
            ET.SubElement(case, "error", message=message, type=record["reason"])
        elif element == "skipped":
            why = (
                record.get("detail") if outcome is Outcome.SKIP else f"expected failure: {message}"
            )
            ET.SubElement(case, "skipped", message=_clean(why or ""))
        if record.get("log"):
            ET.SubElement(case, "system-out").text = console_tail(run_dir / record["log"])
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def _element(outcome: Outcome) -> str:
    """The JUnit element a testcase gets: "failure", "error", "skipped", or "" (passed)."""
    if outcome.is_host:
        return "error"
    if not outcome.met:
        return "failure"
    return "" if outcome is Outcome.PASS else "skipped"


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)[:500]
