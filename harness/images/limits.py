"""How far a download may go before it is given up on: its size, its duration, its
rate; and the small limit of a checksum file. A server that sends without end, or
one byte every few seconds, must not fill the cache nor hold a run forever.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from harness.errors import UsageError

MAX_ENV = "HARNESS_DOWNLOAD_MAX"
DEADLINE_ENV = "HARNESS_DOWNLOAD_DEADLINE"
MIN_RATE_ENV = "HARNESS_DOWNLOAD_MIN_RATE"

_UNITS = {"": 1, "k": 1000, "kib": 1 << 10, "m": 10**6, "mib": 1 << 20, "g": 10**9, "gib": 1 << 30}


@dataclass(frozen=True)
class DownloadLimits:
    """Bounds of one downloaded file (all attempts together).

    max_bytes: a file whose size the catalog does not give (bytes);
    deadline_s: from the first request to the last byte (seconds);
    min_rate: bytes per second, averaged over each rate_window_s, below which the
    server is given up on; read_timeout_s: the longest silence of a socket;
    text_max: a checksum file (bytes)."""

    max_bytes: int = 16 << 30
    deadline_s: float = 4 * 3600.0
    min_rate: int = 16 << 10
    rate_window_s: float = 60.0
    read_timeout_s: float = 60.0
    text_max: int = 1 << 20

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DownloadLimits:
        """The defaults, with $HARNESS_DOWNLOAD_MAX (bytes, or with a unit: 8GiB),
        $HARNESS_DOWNLOAD_DEADLINE (seconds) and $HARNESS_DOWNLOAD_MIN_RATE (bytes
        per second, or 16KiB); raises UsageError naming the variable that is wrong."""
        limits = cls()
        fields: dict[str, float] = {}
        if env.get(MAX_ENV):
            fields["max_bytes"] = parse_bytes(env[MAX_ENV], MAX_ENV)
        if env.get(DEADLINE_ENV):
            fields["deadline_s"] = _positive(env[DEADLINE_ENV], DEADLINE_ENV)
        if env.get(MIN_RATE_ENV):
            fields["min_rate"] = parse_bytes(env[MIN_RATE_ENV], MIN_RATE_ENV)
        if "deadline_s" in fields:  # a short deadline must not wait a long silence out
            fields["read_timeout_s"] = min(limits.read_timeout_s, fields["deadline_s"])
        return cls(**{**limits.__dict__, **fields})


def parse_bytes(text: str, what: str) -> int:
    """`123`, `64MiB`, `8GiB`, `16k`: a positive whole number of bytes."""
    found = re.fullmatch(r"\s*(\d+)\s*([kmg](?:ib)?|)\s*(?:b|bytes?)?\s*", text.lower())
    if not found or int(found.group(1)) <= 0:
        raise UsageError(f"{what}={text!r}: give a positive size in bytes, e.g. 8GiB or 65536")
    return int(found.group(1)) * _UNITS[found.group(2)]


def _positive(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{what}={text!r}: give a positive number of seconds")
    return value


class Pace:
    """Watches one file's transfer against the deadline and the minimum rate.

    `check(total)` after each read, with the bytes received so far; it returns the
    reason to give up (one line), or "" while the transfer may go on."""

    def __init__(self, limits: DownloadLimits):
        self.limits = limits
        self._now = time.monotonic
        self.started = self._now()
        self._window_at = self.started
        self._window_bytes = 0

    def restart_window(self, total: int) -> None:
        """A new attempt: its rate is measured from now."""
        self._window_at, self._window_bytes = self._now(), total

    def check(self, total: int) -> str:
        now = self._now()
        if now - self.started > self.limits.deadline_s:
            return (
                f"not done after {self.limits.deadline_s:g} s ({total} bytes; "
                f"the limit is ${DEADLINE_ENV})"
            )
        window = now - self._window_at
        if window >= self.limits.rate_window_s:
            got = total - self._window_bytes
            if got < self.limits.min_rate * window:
                return (
                    f"too slow: {got} bytes in the last {window:.0f} s, under the minimum "
                    f"{self.limits.min_rate} bytes/s (${MIN_RATE_ENV})"
                )
            self._window_at, self._window_bytes = now, total
        return ""
