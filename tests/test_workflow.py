"""The nightly workflow parses, and every harness and make command in it exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from harness.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"


def run_lines() -> list[str]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    lines = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            lines += [line.strip() for line in step.get("run", "").splitlines()]
    return lines


def test_workflow_is_scheduled_and_sharded() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow[True]["schedule"][0]["cron"]  # YAML 1.1 reads the key `on` as True
    shard = workflow["jobs"]["shard"]["strategy"]["matrix"]
    assert shard["arch"] == ["x86_64", "arm64"] and shard["shard"] == [1, 2, 3, 4]


def test_every_harness_command_in_the_workflow_parses() -> None:
    commands = [line for line in run_lines() if ".venv/bin/harness " in line]
    assert len(commands) >= 3
    parser = build_parser()
    for line in commands:
        concrete = re.sub(r"\$\{\{[^}]*\}\}", "1", line).replace("$baseline", "")
        words = shlex.split(concrete)
        args = words[words.index(".venv/bin/harness") + 1 :]
        parser.parse_args(args)  # exits (fails the test) on an unknown command or option


def test_every_make_target_in_the_workflow_exists() -> None:
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    used = {line.split()[1] for line in run_lines() if line.startswith("make ")}
    assert used and used <= targets


def test_the_history_travels_from_night_to_night_and_cuts_the_shards() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = {name: job["steps"] for name, job in workflow["jobs"].items()}

    def uses(job: str, action: str) -> list[dict[str, object]]:
        return [s for s in steps[job] if str(s.get("uses", "")).startswith(action)]

    for job in ("shard", "report"):
        (restore,) = uses(job, "actions/cache/restore@")
        assert restore["with"] == {
            "path": "history",
            "key": "history-${{ matrix.arch }}-${{ github.run_id }}",
            "restore-keys": "history-${{ matrix.arch }}-",
        }
    (save,) = uses("report", "actions/cache/save@")
    assert save["if"] == "always()" and save["with"]["path"] == "history"  # type: ignore[index]
    runs = [str(s.get("run", "")) for s in steps["report"]]
    merge = next(i for i, r in enumerate(runs) if "harness merge" in r)
    record = next(i for i, r in enumerate(runs) if "harness history import merged/latest" in r)
    assert merge < record < steps["report"].index(save)
    shard_run = next(str(s["run"]) for s in steps["shard"] if "harness matrix" in str(s.get("run")))
    assert "--db history/history.sqlite" in shard_run
