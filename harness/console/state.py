"""What the console watcher (watcher.py) keeps of a boot, and how that becomes a
verdict: the stage reached, the causes seen, the outcome decided."""

from __future__ import annotations

import re

from harness.console.patterns import Kind, Pattern, PatternTable
from harness.console.probe import Findings
from harness.console.resets import EarliestLines
from harness.console.text import ConsoleText, Line
from harness.console.verdict import Hint, Talk, Verdict
from harness.model import STAGES, Login


class WatcherState:
    """A boot as the watcher has seen it so far (its arguments: watcher.py's Watcher)."""

    def __init__(
        self,
        login: Login,
        start: float = 0.0,
        table: PatternTable | None = None,
        probe_devices: bool = True,
        ready: str = "",
        own_log: bool = False,
        resets_from_qemu: bool = False,
    ):
        self.login = login
        # Live, QEMU reports each reset (reset()); the console's restarts then only
        # mark stages.
        self.resets_from_qemu = resets_from_qemu
        self.resets = 0  # resets QEMU reported
        self._best_cycle = "none"  # the furthest stage a boot ended by a reset reached
        self._stuck = 0  # resets in a row whose boot got no further than an earlier one
        self.prompt_at: float | None = None  # when this boot showed its prompt (or ready)
        self.probe_devices = probe_devices  # type the device probe after login
        # What counts as up for an image without a login (an installer's first screen).
        self.ready = re.compile(ready) if ready else None
        # A saved log of our own boot: the login conversation in it is the harness's,
        # so a refused login fails it as it failed live.
        self.own_log = own_log
        self.findings: Findings | None = None
        self._probe_lines: list[str] | None = None
        self._part = 0  # which probe line is typed or next: SCRIPT, then WORKS
        self.table = table or PatternTable()
        self.start = start
        self.stage = "none"
        self._cycle = "none"  # the furthest stage since the last reset
        self._earliest = EarliestLines()
        self._cause: Hint | None = None  # a hint that explains an emergency shell
        self._pending: Hint | None = None  # a cause that decides when repeated
        self._suspect: Hint | None = None  # a device timeout, a cause if the root needed it
        self._proof_kind = ""
        self._login_line = Line(0, "")  # where this boot first reached login
        self.stage_times: dict[str, float] = {}
        self.verdict: Verdict | None = None
        self._text = ConsoleText()
        self._previous = ""
        self._last_line = Line(0, "")
        self._hint: Hint | None = None  # the last soft error
        self._restarts = 0
        self._banners: set[str] = set()  # once-per-start banners seen since the last reset
        self._waited: dict[str, Line] = {}  # devices dracut's initqueue waits for, first line
        # dracut's warning that a device other than the root does not exist.
        self._other_device: tuple[Pattern, Line] | None = None
        self._root = ""  # the root= of the kernel command line, as a device path
        self._looping = 0  # resets since this boot last reached login
        self._last_words: Line | None = None  # the emulator's, unless the boot went on
        self._guest_end: Line | None = None  # its last line, when QEMU was quit
        self._typed: Line | None = None  # a command before anything of the guest
        self._at_shell = False  # someone logged in or typed at the guest's shell this boot
        self._talk = Talk.WAITING
        self._logins = 0  # user names typed at a login prompt
        self._proofs = 0  # shell proofs typed
        self._last_output = start
        self._acted_at = -1.0  # the output time of the quiet spell already acted on
        self._said_at = start
        self._proven_at = 0.0
        self._proof = Line(0, "")  # the line that proved the guest up
        self._asked = False  # the output so far ends in a terminal query (a line editor's)
        self._probed: Line | None = None  # the device checks' end marker, once seen
        self._overrun: tuple[Pattern, Line] | None = None  # a prompt others wrote after

    def _prompt(self, kind: Kind, text: str) -> Pattern | None:
        """The `kind` prompt `text` ends at: a prompt row ends in the space the prompt
        is printed with, which a line's end or a copied terminal may have lost."""
        return self.table.first(kind, text.rstrip() + " ")

    # --- outcomes ----------------------------------------------------------------
    def _reach(self, stage: str, now: float) -> None:
        if stage == "none":  # the row shows no stage (the emulator's own words)
            return
        if STAGES.index(stage) > STAGES.index(self.stage):
            self.stage = stage
        if STAGES.index(stage) > STAGES.index(self._cycle):
            self._cycle = stage
        if stage == "login" and self.prompt_at is None:
            self.prompt_at = now
        self.stage_times.setdefault(stage, round(now - self.start, 3))

    def _decide_pending(self) -> Verdict:
        """The repeating cause decided (dracut waits for a device that never came)."""
        assert self._pending is not None
        pending = self._pending
        # The root device: the one the kernel command line names, else the first listed.
        roots = [d for d in self._waited if self._root and d.lower() == self._root.lower()]
        device = next(iter(roots or self._waited), "")
        at = self._waited.get(device, pending.line)
        why = f"{device} never appeared (dracut's initqueue still waits for it)"
        line = Line(at.number, why if device else at.text)
        return self._decide("fail", self.stage, pending.pattern.reason, line)

    def _undecided(self, status: str, reason: str) -> Verdict:
        """Timeout, QEMU gone or log ended: the last soft error explains it, if the
        boot got no further after it."""
        hint = self._hint
        if hint is not None and hint.stage == self.stage:
            if status == "incomplete":
                reason = hint.pattern.reason
            return self._decide(status, self.stage, reason, hint.line)
        return self._decide(status, self.stage, reason, self._last_line)

    def _decide(self, status: str, stage: str, reason: str, line: Line) -> Verdict:
        cause = self._cause
        if status == "fail" and reason == "emergency-shell" and cause is not None:
            # The emergency shell is what followed; the cause decides.
            if cause is self._pending:
                return self._decide_pending()
            reason, line = cause.pattern.reason, cause.line
        self.verdict = Verdict(
            status,
            stage,
            reason,
            line.number or None,
            line.text.strip(),
            dict(self.stage_times),
            self.findings,
            self._proof_kind if status == "pass" else "",
        )
        return self.verdict
