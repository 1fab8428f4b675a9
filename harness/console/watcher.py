"""The console watcher: decides a boot from its console text, as the text arrives.

It is pure: bytes and the time go in, a verdict (or text to type) comes out. The same
object judges a live boot (`feed` + `tick`, with replies typed into the guest) and a
saved log (`feed` + `end_of_log`), so `harness classify` and `harness run` cannot
disagree about what a line means.

Rules, beyond the pattern table:
- A failure line decides at once, wherever it appears, also after a login prompt and
  during the login conversation.
- Prompts count only at the end of the output: live, when the guest has been quiet
  for QUIET_S; in a saved log, at its end.
- A login prompt alone is not a pass. With credentials the watcher logs in and has
  the shell compute something (a shell, not an echo, prints the result); without,
  it presses Enter and needs the prompt to come back. Either way the guest must stay
  free of failures for SETTLE_S after that proof.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.console import probe
from harness.console.patterns import Kind, Pattern, PatternTable
from harness.console.probe import Findings
from harness.console.text import ConsoleText, Line
from harness.model import STAGES, Login

QUIET_S = 0.5
SETTLE_S = 0.5
RETRY_S = 8.0
MAX_ATTEMPTS = 3
MAX_RESTARTS = 2
ENTER = "\r"  # what a terminal's Enter key sends
SHELL_PROOF = "echo harness-shell-$((6*7))-ok"
_SHELL_PROVEN = re.compile(r"(?:^|\s)harness-shell-42-ok\s*$")
# What writes to a console after its login prompt: the kernel (with or without a
# timestamp or syslog level), cloud-init, systemd.
_OVERRUN = re.compile(
    r"\[\s*\d+\.\d+\]|<\d+>|ci-info: |[Cc]loud-init[ \[]|systemd\["
    r"|\[\s*(?:OK|FAILED|DEPEND|TIME|WARN|INFO|SKIP)\s*\]"  # systemd's status lines
    r"|\s+(?:Starting|Stopping|Reloading|Mounting|Unmounting|Activating|Deactivating) \S"
)
_PROMPT_KINDS = (Kind.FAIL_PROMPT, Kind.LOGIN_PROMPT, Kind.PASSWORD_PROMPT, Kind.SHELL_PROMPT)


@dataclass(frozen=True)
class Verdict:
    status: str  # pass | fail | incomplete (a saved log that ends undecided)
    stage: str
    reason: str
    line: int | None = None
    text: str = ""
    stage_times: Mapping[str, float] = field(default_factory=dict)
    findings: Findings | None = None  # what the guest said of its devices (probe.py)


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


class Watcher:
    def __init__(
        self,
        login: Login,
        start: float = 0.0,
        table: PatternTable | None = None,
        probe: bool = True,
        ready: str = "",
    ):
        self.login = login
        self.probe = probe
        # What counts as up for an image without a login (an installer's first screen).
        self.ready = re.compile(ready) if ready else None
        self.findings: Findings | None = None
        self._probe_lines: list[str] | None = None
        self.table = table or PatternTable()
        self.start = start
        self.stage = "none"
        self.stage_times: dict[str, float] = {}
        self.verdict: Verdict | None = None
        self._text = ConsoleText()
        self._previous = ""
        self._last_line = Line(0, "")
        self._hint: Hint | None = None  # the last soft error
        self._restarts = 0
        self._talk = Talk.WAITING
        self._logins = 0  # user names typed at a login prompt
        self._proofs = 0  # shell proofs typed
        self._last_output = start
        self._acted_at = -1.0  # the output time of the quiet spell already acted on
        self._said_at = start
        self._proven_at = 0.0
        self._proof = Line(0, "")  # the line that proved the guest up
        self._overrun: tuple[Pattern, Line] | None = None  # a prompt others wrote after

    # --- input -------------------------------------------------------------------
    def feed(self, data: bytes, now: float) -> Verdict | None:
        if self.verdict is None and data:
            self._last_output = now
            for line in self._text.feed(data):
                self._judge_line(line, now)
                if self.verdict is not None:
                    break
        return self.verdict

    def tick(self, now: float) -> Verdict | Reply | None:
        """Called often on a live boot; acts on quiet spells and settle times."""
        if self.verdict is not None:
            return self.verdict
        if self._talk is Talk.SHELL:
            return self._say(Talk.PROBING, probe.SCRIPT + ENTER, now)
        if self._talk is Talk.PROBING:
            if now - self._said_at < 2 * RETRY_S:
                return None  # the probe's output is on its way (lines are still judged)
            self._talk, self._proven_at = Talk.PROVEN, now  # proven, though not probed
        if self._talk is Talk.PROVEN:
            if now - self._proven_at >= SETTLE_S:
                return self._decide("pass", "login", "login", self._proof)
            return None
        if now - self._last_output < QUIET_S:
            return None
        if self._acted_at == self._last_output and now - self._said_at < RETRY_S:
            return None
        self._acted_at = self._last_output
        return self._at_end_of_output(now, live=True)

    def end_of_log(self) -> Verdict:
        """The verdict of a saved log that has been fed whole."""
        if self.verdict is not None:
            return self.verdict
        proven = self._talk in (Talk.SHELL, Talk.PROBING, Talk.PROVEN)
        if not proven:
            self._at_end_of_output(self._last_output, live=False)
        if self.verdict is not None:
            return self.verdict
        if proven:
            return self._decide("pass", "login", "login", self._proof)
        return self._undecided("incomplete", "log-ended")

    def stopped(self, cause: str) -> Verdict:
        """The verdict of a live boot that ended without one (timeout, QEMU gone)."""
        return self.verdict or self._undecided("fail", cause)

    # --- lines -------------------------------------------------------------------
    def _judge_line(self, line: Line, now: float) -> None:
        text = line.text
        if not text.strip():
            return
        failure = self.table.first(Kind.FAIL, text) or self.table.first(
            Kind.FAIL, self._previous + text
        )
        if failure is not None:
            self._reach(failure.stage, now)
            self._decide("fail", self.stage, failure.reason, line)
            return
        for row in self.table.stages(text):
            if row.restart and STAGES.index(self.stage) > STAGES.index(row.stage):
                self._restarts += 1
                if self._restarts >= MAX_RESTARTS:
                    self._decide("fail", self.stage, "reset-loop", line)
                    return
            self._reach(row.stage, now)
        hint = self.table.first(Kind.HINT, text)
        if hint is not None:
            self._reach(hint.stage, now)
            self._hint = Hint(hint, line, self.stage)
        if _SHELL_PROVEN.search(text) or (self.ready and self.ready.search(text)):
            self._reach("login", now)
            shell = self.probe and not self.ready
            self._talk = Talk.SHELL if shell else Talk.PROVEN
            self._proven_at, self._proof = now, line
        self._collect_probe(line, now)
        if self.verdict is not None:
            return
        self._note_overrun_prompt(line)
        self._previous = text[-256:]
        self._last_line = line

    def _note_overrun_prompt(self, line: Line) -> None:
        """A login prompt that other output ran into ("host login: [  35.1] cloud-init
        ...", "host login: ci-info: ..."): messages written to the console after
        getty showed its prompt, common on cloud images."""
        head, found, rest = line.text.partition("login: ")
        if found and _OVERRUN.match(rest):
            prompt = self.table.first(Kind.LOGIN_PROMPT, head + found)
            if prompt is not None:
                self._overrun = (prompt, Line(line.number, head + found))

    def _collect_probe(self, line: Line, now: float) -> None:
        """The lines between the probe's markers, then what they say."""
        text = line.text
        if probe.BEGIN in text:
            self._probe_lines = []
        elif probe.END in text and self._probe_lines is not None:
            self.findings = probe.parse(self._probe_lines)
            self._probe_lines = None
            if self._logins == 0 and self.findings.root_fs == "rootfs":
                # A shell that no login led to, on a / that is still the initramfs: a
                # rescue shell whose messages and prompt no row knew (or `quiet` hid).
                why = "the shell's / is the initramfs (rootfs): the real root was never mounted"
                self._decide("fail", "initramfs", "emergency-shell", Line(line.number, why))
                return
            if self._talk in (Talk.SHELL, Talk.PROBING):
                self._talk, self._proven_at = Talk.PROVEN, now
        elif self._probe_lines is not None and len(self._probe_lines) < 256:
            self._probe_lines.append(text)

    # --- the end of the output: prompts and the login conversation -----------------
    def _at_end_of_output(self, now: float, live: bool) -> Verdict | Reply | None:
        tail = self._text.partial
        if self.ready and self.ready.search(tail.text):
            self._reach("login", now)
            self._talk, self._proven_at, self._proof = Talk.PROVEN, now, tail
            return None if live else self._decide("pass", "login", "login", tail)
        failure = self.table.first(Kind.FAIL, tail.text) if tail.text.strip() else None
        if failure is not None:
            self._reach(failure.stage, now)
            return self._decide("fail", self.stage, failure.reason, tail)
        prompt = next(
            (
                p
                for kind in _PROMPT_KINDS
                if (p := self.table.first(kind, tail.text.rstrip() + " "))
            ),
            None,
        )
        if prompt is None and self._overrun is not None and self._talk is Talk.WAITING:
            # The last prompt was written over by messages; it still waits for input.
            prompt, tail = self._overrun
        if prompt is None:
            return self._nudge(now) if live else None
        if prompt.kind is Kind.FAIL_PROMPT:
            self._reach(prompt.stage, now)
            return self._decide("fail", self.stage, prompt.reason, tail)
        if prompt.kind is Kind.SHELL_PROMPT and self.stage == "initramfs":
            # An interactive shell before the real root is an emergency shell.
            return self._decide("fail", self.stage, "emergency-shell", tail)
        if not live:
            return self._saved_log_ends_at(prompt, tail, now)
        return self._answer(prompt, tail, now)

    def _saved_log_ends_at(self, prompt: Pattern, tail: Line, now: float) -> Verdict | None:
        """A saved log that ends waiting at a login prompt or a shell reached login,
        unless the login it shows was refused."""
        self._reach("login", now)
        if prompt.kind is Kind.PASSWORD_PROMPT:
            return None
        refusal = self._refusal()
        if refusal is not None:
            return self._decide("fail", "login", "login-failed", refusal)
        return self._decide("pass", "login", "login", tail)

    def _refusal(self) -> Line | None:
        """The "Login incorrect" line, when that is the last soft error seen."""
        if self._hint is not None and self._hint.pattern.reason == "login-failed":
            return self._hint.line
        return None

    def _answer(self, prompt: Pattern, tail: Line, now: float) -> Verdict | Reply | None:
        if prompt.kind is Kind.LOGIN_PROMPT:
            self._reach("login", now)
            if self.login.user is None:
                if self._talk is Talk.POKED and self._last_output > self._said_at:
                    self._talk, self._proven_at, self._proof = Talk.PROVEN, now, tail
                    return None
                return self._say(Talk.POKED, ENTER, now)
            if self._talk is not Talk.WAITING and now - self._said_at < RETRY_S:
                return None  # refused ("Login incorrect"): a late password may yet be set
            if self._logins >= MAX_ATTEMPTS:
                return self._decide("fail", self.stage, "login-failed", self._refusal() or tail)
            self._logins += 1
            self._overrun = None
            return self._say(Talk.USER_SENT, self.login.user + ENTER, now)
        if prompt.kind is Kind.PASSWORD_PROMPT and self._talk is Talk.USER_SENT:
            return self._say(Talk.PASSWORD_SENT, self.login.password + ENTER, now)
        if prompt.kind is Kind.SHELL_PROMPT:
            return self._prove_shell(now)
        return None

    def _nudge(self, now: float) -> Reply | None:
        """Output is quiet but ends in no known prompt: an unusual shell prompt or motd."""
        waiting = self._talk in (Talk.USER_SENT, Talk.PASSWORD_SENT, Talk.PROOF_SENT)
        if waiting and now - self._said_at >= RETRY_S:
            return self._prove_shell(now)
        return None

    def _prove_shell(self, now: float) -> Reply | None:
        waited = now - self._said_at >= RETRY_S and self._proofs < MAX_ATTEMPTS
        if self._talk is Talk.PROOF_SENT and not waited:
            return None
        self._proofs += 1
        return self._say(Talk.PROOF_SENT, SHELL_PROOF + ENTER, now)

    def _say(self, talk: Talk, text: str, now: float) -> Reply:
        self._talk, self._said_at = talk, now
        return Reply(text)

    # --- outcomes ----------------------------------------------------------------
    def _reach(self, stage: str, now: float) -> None:
        if STAGES.index(stage) > STAGES.index(self.stage):
            self.stage = stage
        self.stage_times.setdefault(stage, round(now - self.start, 3))

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
        self.verdict = Verdict(
            status,
            stage,
            reason,
            line.number or None,
            line.text.strip(),
            dict(self.stage_times),
            self.findings,
        )
        return self.verdict
