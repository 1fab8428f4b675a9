"""The `harness` command line.

Each subcommand lives in harness/commands/; every one is imported to build the parser,
so each keeps its heavy imports inside its `main`, and `harness --help` starts fast.
Exit status: 0 success, 1 a guest did not do what was expected, 2 bad input or an
infrastructure error, 130 interrupted, 141 the reader of stdout went away.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2

COMMANDS = {
    "run": "boot one cell and watch its console",
    "matrix": "boot the cells of matrix.yaml and print the grid",
    "list": "list the cells of a matrix profile",
    "compare": "what changed between two runs (exit 1 on a regression, 3 on untested cells)",
    "merge": "join shard runs into one run",
    "classify": "judge saved console logs (or re-judge a run) with the live watcher",
    "export": "libvirt domain XML of cells, and per-OS facts of a run",
    "bisect": "the first machine type or firmware build where a cell changes",
    "history": "the results history across nights: a cell, failing, flaky, slower",
    "images": "build and list the images",
    "qemu": "build and list the QEMU builds beside the host's (images/qemu.yaml)",
    "doctor": "check that this host can run cells",
}


# Options whose value is passed on to another program and may itself start with "-"
# (`--qemu-arg -device`): argparse would take such a value for an option of its own.
PASS_ON_OPTIONS = frozenset({"--qemu-arg"})


def attach_values(argv: Sequence[str]) -> list[str]:
    """`--qemu-arg VALUE` as `--qemu-arg=VALUE`, which argparse reads whatever VALUE
    starts with (argparse documents the `=` form for values that look like options).
    Everything after a `--` is left alone."""
    out: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--":
            out += [word, *words]
            break
        value = next(words, None) if word in PASS_ON_OPTIONS else None
        out.append(word if value is None else f"{word}={value}")
    return out


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad option told in one line (argparse's own way prints the
    usage first), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: None = None
    ) -> argparse.Namespace:
        """As argparse's, but words no option takes are told by the subcommand's
        parser (`harness run: unrecognized arguments: ...`), as its other errors are:
        argparse leaves them to the top parser, which names only `harness`."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command = getattr(parsed, "command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            # a subcommand's own action (`images build`: dest "images_command")
            if action := getattr(parsed, f"{command}_command", None):
                prog += f" {action}"
            self.exit(
                EXIT_ERROR,
                f"{prog}: unrecognized arguments: {' '.join(extra)} (see {prog} --help)\n",
            )
        return parsed


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--qemu", help="qemu-system-aarch64 to use (default: $HARNESS_QEMU or PATH)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="harness",
        description="Boots AArch64 guests under QEMU across machine types, virtio transports "
        "and firmware, and records which reach a login prompt.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        _add_common(command)
        importlib.import_module(f"harness.commands.{name}").add_arguments(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from harness.errors import HarnessError

    args = build_parser().parse_args(attach_values(sys.argv[1:] if argv is None else argv))
    module = importlib.import_module(f"harness.commands.{args.command}")
    caught: list[int] = []

    def stop(signum: int, frame: object) -> None:
        # Ctrl-C, SIGTERM and SIGHUP (the terminal closed) end a command alike: every
        # QEMU stopped and reaped, what finished written, the rest marked incomplete.
        # Once: raised again inside that clean-up (a key's auto-repeat, a second kill),
        # a signal lost the result being written and left the cell's work files.
        if not caught:
            caught.append(signum)
            raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        # Ignored where we start (nohup; a script's background job, for SIGINT) stays so.
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, stop)
    try:
        code: int = module.main(args)
        return code
    except HarnessError as e:
        print(f"harness {args.command}: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader went away (`harness list | head`): nothing more to say, and no
        # success to claim either: the status a shell gives a command SIGPIPE ended.
        # (`harness matrix` keeps running instead: harness/commands/output.py.)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except OSError as e:  # the host's file system: full, read-only, gone
        where = f": {e.filename}" if e.filename else ""
        print(f"harness {args.command}: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as e:
        from harness.errors import Resumable

        by: int = caught[0] if caught else signal.SIGINT  # else a worker's Cancelled
        words: dict[int, str] = {signal.SIGINT: "interrupted", signal.SIGHUP: "hung up"}
        how = words.get(by, "terminated")
        if isinstance(e, Resumable):
            how += f"; to finish it: {e.resume}"
        # A terminal shows Ctrl-C as ^C where the cursor was: the line starts after it.
        # Elsewhere (a pipe, a file, SIGTERM) nothing was added: no blank line.
        fresh = "\n" if by == signal.SIGINT and sys.stderr.isatty() else ""
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            print(f"{fresh}harness {args.command}: {how}", file=sys.stderr)
        return 128 + by


if __name__ == "__main__":
    sys.exit(main())
