"""QEMU's own events of a cell (guest resets, disk errors), read over QMP.

QMP is QEMU's JSON monitor protocol: one JSON object a line; QEMU greets, a client
sends `qmp_capabilities`, and QEMU then sends events as they happen
(qemu docs/interop/qmp-spec.rst; events in qapi/run-state.json and qapi/block-core.json).
The channel is one end of a socketpair handed to QEMU as an inherited descriptor
(`-chardev socket,fd=N`): no listening socket, no path in the file system, nothing a
by-hand run of cmdline.sh needs. Only events are read; the harness sends no command
but the capabilities handshake, so a small reader fits the console loop's polling
where an asyncio client library would need a loop of its own.
"""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass, field
from typing import Any

# A line longer than this is not an event QMP sends; it is dropped, never kept growing.
MAX_LINE = 1 << 20
CHARDEV_ID = "harness-qmp"


@dataclass(frozen=True)
class Event:
    """One QMP event: its name (e.g. "RESET", "BLOCK_IO_ERROR") and its data."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)


def qmp_argv(fd: int) -> list[str]:
    """The options that give QEMU a QMP monitor on the inherited descriptor `fd`."""
    return [
        "-chardev", f"socket,id={CHARDEV_ID},fd={fd}",
        "-mon", f"chardev={CHARDEV_ID},mode=control",
    ]  # fmt: skip


class Qmp:
    """The harness's end of the monitor; `theirs` is QEMU's, inherited at launch."""

    def __init__(self) -> None:
        self._ours, self._theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._ours.setblocking(False)
        self._buffer = b""
        self.closed = False

    @property
    def theirs(self) -> int:
        """QEMU's descriptor, to pass to the child (closed here once QEMU has it)."""
        return self._theirs.fileno()

    def launched(self) -> None:
        """QEMU holds its end now: drop ours of it, so QEMU exiting closes the channel.
        The handshake is sent at once; QEMU reads it after its greeting."""
        self._theirs.close()
        self._send({"execute": "qmp_capabilities"})

    def events(self) -> list[Event]:
        """The events QEMU has sent since the last call; never blocks."""
        while not self.closed:
            try:
                chunk = self._ours.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                break
            self._buffer += chunk
        lines = self._buffer.split(b"\n")
        self._buffer = lines.pop()
        if len(self._buffer) > MAX_LINE:
            self._buffer = b""
        found = []
        for line in lines:
            message = _parse(line)
            if message is None:
                continue
            if isinstance(message.get("event"), str):
                data = message.get("data")
                found.append(Event(message["event"], data if isinstance(data, dict) else {}))
        return found

    def _send(self, command: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # QEMU gone: its exit status says why
            self._ours.send(json.dumps(command).encode() + b"\n")

    def close(self) -> None:
        self._ours.close()
        self._theirs.close()


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None
