"""What the console watcher (watcher.py) hands out and keeps: the verdict, text to
type into the guest, the soft errors it saw and where its login conversation is."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.console.patterns import Pattern
from harness.console.probe import Findings
from harness.console.text import Line


@dataclass(frozen=True)
class Verdict:
    status: str  # pass | fail | incomplete (a saved log that ends undecided)
    stage: str
    reason: str
    line: int | None = None
    text: str = ""
    stage_times: Mapping[str, float] = field(default_factory=dict)
    findings: Findings | None = None  # what the guest said of its devices (probe.py)
    # What a pass rests on: "shell" (a shell computed), "prompt" (a login prompt was
    # reached, login not proven), "ready" (the image's ready pattern); "" unless pass.
    proof: str = ""


@dataclass(frozen=True)
class Hint:
    """A soft error seen on the console, and the stage the boot had reached then."""

    pattern: Pattern
    line: Line
    stage: str


@dataclass(frozen=True)
class Reply:
    """Text the watcher wants typed into the guest's console."""

    text: str


class Talk(enum.Enum):
    WAITING = "waiting"
    POKED = "poked"  # Enter pressed at a prompt without credentials
    USER_SENT = "user-sent"
    PASSWORD_SENT = "password-sent"
    PROOF_SENT = "proof-sent"
    SHELL = "shell"  # a shell is proven; the device probe is still to be typed
    PROBING = "probing"
    PROVEN = "proven"
