"""Re-judging a run says what the live run said (issue 14): `harness classify RUN`
judges each cell's console log with the cell's own context (harness/judge.py: the
installer's ready pattern, the image's login, the transport check of the device
probe), so an unchanged pattern table changes no verdict."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Harness

# A few smoke cells (a direct and an AAVMF pass, the 2016 failure) and the two
# installer cells of the nightly profile, whose pass is its first screen, not a login.
CELLS = (
    "(debian-12-installer/none/virt/ or debian-12-tiny/aavmf/virt/pci"
    " or debian-12-tiny-mmio-only/none/virt/pci or debian-12-tiny/none/virt/mmio)"
    " and not qemu-trixie and not pcie-port"  # the host QEMU's own cells, once each
)


def test_rejudging_a_real_run_changes_no_verdict(harness: Harness, tmp_path: Path) -> None:
    proc = harness(
        # The installer's first screen takes 1-3 minutes under TCG on a busy host.
        "matrix", "--profile", "nightly", "-k", CELLS, "-j", "2", "--timeout", "600",
        "--results", str(tmp_path), timeout=1500,
    )  # fmt: skip
    run = (tmp_path / "latest").resolve()
    assert (run / "results.json").is_file(), proc.stdout + proc.stderr
    cells = {c["cell"]: c for c in json.loads((run / "results.json").read_text())["cells"]}
    assert len(cells) == 5
    assert cells["debian-12-tiny/none/virt/mmio"]["status"] == "pass"
    assert cells["debian-12-tiny/none/virt/mmio"]["proof"] == "shell"
    installer = [c for name, c in cells.items() if name.startswith("debian-12-installer")]
    # Under a loaded TCG host an installer may miss its timeout; one that passed is
    # the case re-judging used to get wrong (its ready screen, not a login).
    passed = [c for c in installer if c["status"] == "pass"]
    assert passed, [(c["cell"], c["reason"]) for c in installer]
    assert all(c["proof"] == "ready" for c in passed)
    rejudged = harness("classify", str(run))
    assert rejudged.returncode == 0, rejudged.stdout
    assert rejudged.stdout.count("same ") == len(
        [c for c in cells.values() if c["status"] in ("pass", "fail")]
    )
    assert rejudged.stdout.strip().splitlines()[-1].startswith("0 of ")
    assert rejudged.stdout.strip().endswith(f" verdicts would change in {run}")
