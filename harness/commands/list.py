"""harness list: the cells a profile expands to, one a line, with every skip's reason."""

from __future__ import annotations

import argparse

from harness.cli import EXIT_OK
from harness.commands.common import add_download_arguments, add_matrix_arguments
from harness.commands.sharding import add_shard_arguments
from harness.wording import counted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_matrix_arguments(parser)
    add_download_arguments(parser)
    add_shard_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from harness.commands.common import discover_host, load_plan, open_catalog
    from harness.matrix.sameboot import same_boots

    catalog = open_catalog(args.offline, not args.no_verify)
    host = discover_host(args.qemu, catalog)
    plan = load_plan(catalog, host, args.profile, args.matrix, args.keyword)
    if args.shard:
        from harness.commands.sharding import plan_cost
        from harness.matrix.shard import load_of, shard

        cost = plan_cost(args.durations, args.db, catalog.workspace.results, "list")
        plan = shard(plan, args.shard, cost)
        together = same_boots(plan.cells, plan.virt_aliases)
        print(f"shard {args.shard}: about {load_of(plan.cells, cost, together):.0f} s of boots")
    runnable = 0
    booted_as = same_boots(plan.cells, plan.virt_aliases)
    unbuildable = {name: catalog.cannot_build(name) for name in {p.cell.image for p in plan.cells}}
    for planned in plan.cells:
        notes = []
        if planned.cell.id in booted_as:
            notes.append(f"same boot as {booted_as[planned.cell.id]}")
        if planned.skip:
            notes.append(f"skip: {planned.skip}")
        if offline := catalog.unavailable_offline(planned.cell.image):
            notes.append(f"skip: {offline}")
        if why := unbuildable[planned.cell.image]:  # the run's `error image-build-failed`
            notes.append(f"not runnable here: {why}")
        # Runnable: a cell that will boot here, so no skip of any kind nor an image
        # this host cannot build.
        runnable += not any(note.startswith(("skip:", "not runnable")) for note in notes)
        if planned.expect:
            why = " ".join(filter(None, [planned.expect.stage, planned.expect.reason]))
            notes.append(f"expected to fail{': ' + why if why else ''}")
        print(planned.cell.id + ("  (" + "; ".join(notes) + ")" if notes else ""))
    print(f"{counted(len(plan.cells), 'cell')} in profile {plan.profile}, {runnable} runnable here")
    if any(unbuildable.values()):
        from harness.images.full import HOW_TO_GET_READY

        print(f"full images build where the host has their tools: {HOW_TO_GET_READY}")
    return EXIT_OK
