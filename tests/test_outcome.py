"""Outcomes are one type: every report, comparison and export takes its meaning from
harness.model.Outcome, so one outcome means one thing everywhere."""

from __future__ import annotations

import ast
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from conftest import ROOT

from harness.cells import axis_problem
from harness.export.facts import facts
from harness.model import Outcome
from harness.report.compare import label
from harness.report.grid import MARKS, build_grid, problems
from harness.report.junit import console_tail, write_junit
from harness.report.pages import COLOURS
from harness.report.results import verdict_exit


def record(outcome: str, transport: str = "pci", machine: str = "virt") -> dict[str, object]:
    return {
        "cell": f"img/none/{machine}/{transport}", "image": "img", "firmware": "none",
        "machine": machine, "transport": transport, "outcome": outcome, "stage": "kernel",
        "reason": "kernel-panic", "detail": "", "duration_s": 1.0, "guest": None,
    }  # fmt: skip


def test_an_outcome_is_its_plain_word_in_json_dicts_and_comparisons() -> None:
    assert Outcome("xfail") is Outcome.XFAIL and Outcome.XFAIL == "xfail"
    assert json.dumps({"outcome": Outcome.PASS}) == '{"outcome": "pass"}'
    assert f"{Outcome.ERROR}" == "error" and Outcome.ERROR.upper() == "ERROR"
    assert {"pass": 1}[Outcome.PASS] == 1 and {Outcome.SKIP: 2}["skip"] == 2


def test_whose_word_each_outcome_is() -> None:
    assert [o for o in Outcome if o.is_guest] == [Outcome.PASS, Outcome.FAIL, Outcome.INCOMPLETE]
    assert [o for o in Outcome if o.is_host] == [Outcome.ERROR]
    assert [o for o in Outcome if o.is_expectation] == [Outcome.XFAIL, Outcome.XPASS]


def test_every_report_reads_the_same_meaning() -> None:
    # an unexpected pass reached a login (facts) but did not meet its expectation
    # (compare, junit, exit status); an expected failure is the other way round
    document = facts({}, [record("xpass"), record("xfail", "mmio")], {})
    assert document["oses"][0]["reached_login"] == ["none/virt/pci"]
    assert label("pass", "xpass") == "regression" and label("xfail", "xfail") == "still-passing"
    assert verdict_exit([record("xpass")], 1) == 1 and verdict_exit([record("xfail")], 1) == 0
    assert [
        line.split()[0] for line in problems(build_grid([record("xfail"), record("skip", "mmio")]))
    ] == ["XFAIL"]


def test_junit_elements_follow_the_outcome(tmp_path: Path) -> None:
    final = [
        record(o.value, machine=f"virt-{i}.0")
        for i, o in enumerate(Outcome)
        if o.value != "incomplete"
    ]
    write_junit(tmp_path / "junit.xml", tmp_path, "t", final)
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    kinds = {c.get("name", "").split("/")[1]: [e.tag for e in c] for c in suite}
    by_outcome = {r["outcome"]: kinds[str(r["machine"])] for r in final}
    assert by_outcome == {
        "pass": [], "fail": ["failure"], "error": ["error"], "skip": ["skipped"],
        "xfail": ["skipped"], "xpass": ["failure"], "unstable": ["failure"],
    }  # fmt: skip
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("3", "1", "2")


def test_every_outcome_a_run_can_end_with_has_a_mark_and_a_colour() -> None:
    in_runs = set(Outcome) - {Outcome.INCOMPLETE}  # incomplete is a saved log's, not a run's
    assert set(MARKS) == in_runs and set(COLOURS) == in_runs


def test_no_module_lists_outcomes_by_hand() -> None:
    """No second GOOD set or status list: the groups live in Outcome alone."""
    names = {"GOOD", "BAD", "MET", "STATUSES"}
    for path in (ROOT / "harness").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                bound = {t.id for t in node.targets if isinstance(t, ast.Name)}
                assert not bound & names, f"{path}: {bound & names}"


def test_the_junit_tail_reads_the_console_as_the_watcher_does(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"\x1b]0;root@guest: ~\x07\x1b[1;32mWelcome\x1b[0m\r\nlogin: \x1b(B\x00")
    assert console_tail(log) == "Welcome\nlogin: "


def test_a_regression_fails_a_run_whose_cells_all_met_their_expectation() -> None:
    assert verdict_exit([record("pass")], 1, {"img/none/virt/pci": "regression"}) == 1
    assert verdict_exit([record("error")], 1, {"img/none/virt/pci": "regression"}) == 2
    assert verdict_exit([record("pass")], 1, {"img/none/virt/pci": "fixed"}) == 0


def test_a_bad_axis_value_reads_the_same_in_a_cell_and_in_matrix_yaml() -> None:
    assert axis_problem("firmware", "nope", ["none", "aavmf"]) == (
        "firmware 'nope' is not one of: none, aavmf, or a firmware CODE file"
    )
    assert axis_problem("transport", "usb", []) == (
        "transport 'usb' is not one of: mmio, pci, pcie-port, libvirt-mmio, libvirt-pci, "
        "virt-install, virt-install-mmio"
    )
    assert axis_problem("image", "a", ["a"]) == ""
