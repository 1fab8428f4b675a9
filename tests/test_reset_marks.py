"""Re-judging our own log counts resets as the live boot did (issue 14): the live boot
marks each QEMU RESET event in console.log (harness/console/marks.py), and judging a
log with marks counts its resets from them (Watcher.reset), not from the console text.

The logs are real: quirk-reboot-once and fault-reboot booted by the harness with the
marks (tests/fixtures/consoles/*-marked.log). A guest that resets two or three times
on its way is made from the first: its first boot (up to its reset) said again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import FIXTURES

from harness.console import marks
from harness.console.text import ConsoleText
from harness.console.watcher import MAX_STUCK_RESETS, Watcher
from harness.judge import judge_log
from harness.model import Cell, Image, Login

ONCE = (FIXTURES / "consoles" / "quirk-reboot-once-marked.log").read_bytes()
LOOP = FIXTURES / "consoles" / "fault-reboot-marked.log"
MARK = re.compile(rb"\n\[harness: QEMU reported guest reset \d+\]\n")
CELL = Cell("quirk-reboot-once", "none", "virt", "pci")
IMAGE = Image("quirk-reboot-once", None, login=Login("root"))


def resetting(times: int) -> tuple[list[bytes], bytes]:
    """quirk-reboot-once's real first boot `times` times, each ended by its reset,
    then its real second boot to the login: (the boots, the rest)."""
    first, mark, rest = ONCE.partition(marks.reset_mark(1))
    assert mark, "the real log has its reset's mark"
    return [first] * times, rest


def marked_log(tmp_path: Path, times: int) -> Path:
    boots, rest = resetting(times)
    log = tmp_path / f"reset-{times}.log"
    log.write_bytes(b"".join(b + marks.reset_mark(n + 1) for n, b in enumerate(boots)) + rest)
    return log


@pytest.mark.parametrize("times", [1, 2, 3])
def test_resetting_on_the_way_then_logging_in_passes_live_and_re_judged(
    tmp_path: Path, times: int
) -> None:
    log = marked_log(tmp_path, times)
    # Live: the same boots, with QEMU's events, decide no loop.
    live = Watcher(Login("root"), resets_from_qemu=True)
    boots, _ = resetting(times)
    for boot in boots:
        assert live.feed(boot, 0.0) is None
        assert live.reset(0.0, marks.RESET_LINES) is None
    assert live.resets == times
    # Re-judged, as `harness classify RUN` does (own log) and as a bare log.
    for verdict in (judge_log(log, CELL, IMAGE), judge_log(log)):
        assert (verdict.status, verdict.stage, verdict.reason) == ("pass", "login", "login")
    # Without the marks (the text's rule, what re-judging said before them), two
    # restarts seen in the text are a loop.
    bare = tmp_path / "bare.log"
    bare.write_bytes(MARK.sub(b"", log.read_bytes()))
    expected = "reset-loop" if times >= 2 else "login"
    assert judge_log(bare, CELL, IMAGE).reason == expected


def test_a_reset_too_many_is_a_loop_at_the_same_reset_live_and_re_judged(tmp_path: Path) -> None:
    times = MAX_STUCK_RESETS + 2
    live = Watcher(Login("root"), resets_from_qemu=True)
    boots, _ = resetting(times)
    for boot in boots:
        assert live.feed(boot, 0.0) is None
        verdict = live.reset(0.0, marks.RESET_LINES)
    assert verdict is not None
    saved = judge_log(marked_log(tmp_path, times), CELL, IMAGE)
    assert saved == verdict
    assert (saved.status, saved.stage, saved.reason) == ("fail", "userspace", "reset-loop")
    assert saved.text == f"QEMU reported reset {times}; each boot stopped at userspace"


def test_the_real_loop_is_decided_at_qemus_fourth_reset() -> None:
    """fault-reboot live: reset-loop at QEMU's 4th reset, whose boot printed nothing
    more; its mark is in the log all the same."""
    assert LOOP.read_bytes().count(b"[harness: QEMU reported guest reset") == 4
    verdict = judge_log(LOOP)
    assert (verdict.status, verdict.stage, verdict.reason) == ("fail", "userspace", "reset-loop")
    assert verdict.text == "QEMU reported reset 4; each boot stopped at userspace"
    assert verdict.line is not None  # the 4th mark's own line
    assert LOOP.read_bytes().split(b"\n")[verdict.line - 1] == marks.reset_mark(4).strip()


def test_line_numbers_stay_the_logs() -> None:
    """The deciding line's number is the file's, marks counted, live and re-judged."""
    path = FIXTURES / "consoles" / "quirk-reboot-once-marked.log"
    verdict = judge_log(path, CELL, IMAGE)
    assert verdict.line is not None
    assert ONCE.split(b"\n")[verdict.line - 1].strip() == b"harness-shell-42-ok"
    # A mark that cut a line in two: the line keeps its number, the ones after count it.
    live = Watcher(Login("root"), resets_from_qemu=True)
    live.feed(b"one\r\ntwo ha", 0.0)
    live.reset(0.0, marks.RESET_LINES)
    live.feed(b"lf\r\nKernel panic - not syncing: x\r\n", 0.0)
    assert live.verdict is not None and live.verdict.line == 5
    # Two marks with nothing between: the second on its own line too.
    log = b"one\r\ntwo ha" + marks.reset_mark(1) + marks.reset_mark(2) + b"lf\r\n"
    text = ConsoleText()
    assert [line.number for line in text.feed(b"one\r\ntwo ha")] == [1]
    lines = log.split(b"\n")
    for n in (1, 2):
        mark = text.skip(marks.RESET_LINES)
        assert lines[mark - 1] == marks.reset_mark(n).strip()
    assert [(line.number, line.text) for line in text.feed(b"lf\r\nthree\r\n")] == [
        (2, "two half"),
        (log.count(b"\n") + 1, "three"),
    ]


@pytest.mark.parametrize("size", [1, 7, 41, 1 << 16])
def test_marks_are_found_across_chunk_ends(size: int) -> None:
    log = b"".join(b + marks.reset_mark(n + 1) for n, b in enumerate(resetting(3)[0]))
    chunks = [log[i : i + size] for i in range(0, len(log), size)]
    pieces = list(marks.split_resets(chunks))
    assert sum(p is marks.RESET for p in pieces) == 3
    text = b"".join(p for p in pieces if isinstance(p, bytes))
    assert text == MARK.sub(b"", log)


def test_a_log_without_marks_keeps_the_texts_rule(tmp_path: Path) -> None:
    """Someone else's log (no marks): two restarts in the text are a loop, as before."""
    log = tmp_path / "theirs.log"
    log.write_bytes(MARK.sub(b"", marked_log(tmp_path, 2).read_bytes()))
    assert not marks.has_resets(log)
    assert judge_log(log).reason == "reset-loop"
