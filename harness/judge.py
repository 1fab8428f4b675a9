"""One judge for a live boot and a saved log: the console watcher set up for the
cell's image, then the checks that only the cell can make.

A live boot (boot.py) and `harness classify` (re-judging a run from its console logs)
both build their watcher with `watcher_for` and finish its verdict with `judged`, so
a re-judged run says what the live run said unless the pattern table changed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from harness.console import formats, marks, probe
from harness.console.watcher import Verdict, Watcher
from harness.model import Cell, Image, Login

if TYPE_CHECKING:
    from harness.catalog import Catalog

CHUNK = 1 << 16


def watcher_for(
    image: Image,
    login: Login | None = None,
    start: float = 0.0,
    own_log: bool = False,
    resets_from_qemu: bool = False,
) -> Watcher:
    """The watcher for `image`: its login (or `login`, the one a boot made, e.g. a
    cloud image's per-cell password) and its ready pattern (an installer's screen);
    `own_log` for a saved log of our own boot (its login conversation was ours);
    `resets_from_qemu` for a live boot, whose resets QEMU reports (Watcher.reset)."""
    return Watcher(
        login or image.login,
        start,
        ready=image.ready,
        own_log=own_log,
        resets_from_qemu=resets_from_qemu,
    )


def judged(cell: Cell, image: Image, verdict: Verdict) -> Verdict:
    """The watcher's verdict with the cell's own check: a pass counts only if the
    guest's virtio devices sit on the cell's transport (what the device probe in
    the log says, probe.py); otherwise fail `transport-mismatch`. Then every device
    with a driver bound must work (probe.dead_device): else fail with the reason
    naming it (disk-unreadable, net-no-address, rng-no-bytes)."""
    if verdict.status != "pass" or verdict.findings is None:
        return verdict
    why = probe.mismatch(cell.transport, verdict.findings, image.disk is not None)
    if why:
        return dataclasses.replace(verdict, status="fail", reason="transport-mismatch", text=why)
    reason, why = probe.dead_device(verdict.findings)
    if reason:
        return dataclasses.replace(verdict, status="fail", reason=reason, text=why)
    return verdict


def judge_log(path: Path, cell: Cell | None = None, image: Image | None = None) -> Verdict:
    """A saved console log judged as its cell was live, read in chunks (memory stays
    bounded). With them, a log of our own run: the login conversation in it was the
    harness's. Without: a log of unknown origin (default login, no ready pattern, no
    transport check; a login prompt reached is its pass). A log with the harness's
    reset marks (marks.py) has its resets counted from them, as the live boot counted
    QEMU's events (Watcher.reset); one without, from its console text. Raises OSError
    if `path` cannot be read."""
    from_qemu = marks.has_resets(path, CHUNK)
    if image is not None:
        watcher = watcher_for(image, own_log=True, resets_from_qemu=from_qemu)
    else:
        watcher = Watcher(Login(), resets_from_qemu=from_qemu)
    with path.open("rb") as log:
        # A log another tool saved (LAVA's log.yaml, capture timestamps) is unwrapped first.
        chunks = formats.console_bytes(iter(lambda: log.read(CHUNK), b""))
        for piece in marks.split_resets(chunks) if from_qemu else chunks:
            if isinstance(piece, marks.Reset):
                verdict = watcher.reset(0.0, marks.RESET_LINES)
            else:
                verdict = watcher.feed(piece, 0.0)
            if verdict is not None:
                break
    verdict = watcher.end_of_log()
    return judged(cell, image, verdict) if cell is not None and image is not None else verdict


def image_context(catalog: Catalog, name: str) -> Image | None:
    """What judging needs of image `name` (login, ready pattern, whether it has a
    disk), without building or downloading anything: the built image if the cache
    has it, else its recipe or catalog entry; None for a name the catalog lacks
    (an ad hoc `harness run --kernel ...`)."""
    if name in catalog.recipes:
        built = catalog.store.image(name)
        if built is not None:
            return built
        recipe = catalog.recipes[name]
        disk = None if recipe.kind == "installer" else Path(name)
        login = Login(None) if recipe.kind == "installer" else Login("root")
        return Image(name, disk, login=login, ready=recipe.ready, cloud_init=recipe.cloud_init)
    entry = catalog.remote.get(name)
    if entry is None:
        return None
    disk = Path(entry.disk.url) if entry.disk is not None else None
    return Image(name, disk, login=entry.login, cloud_init=entry.cloud_init)
