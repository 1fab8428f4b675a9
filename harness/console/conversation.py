"""The end of the console's output (watcher.py): where a prompt waits, and the login
conversation the watcher has there. Live, it answers a login prompt (user name,
password) and has the shell compute something; in a saved log, the prompt the log
ends at decides."""

from __future__ import annotations

import re

from harness.console.patterns import Kind, Pattern
from harness.console.state import WatcherState
from harness.console.text import Line, saved_log_tails
from harness.console.verdict import Reply, Talk, Verdict
from harness.model import STAGES

RETRY_S = 8.0
# Quiet before a login, password or shell prompt is answered (watcher.py's QUIET_S,
# longer, is the quiet before a prompt decides anything). An answer decides nothing:
# typed too soon (more boot output followed the prompt) it waits in the guest's
# terminal for whoever reads next, every line after it is judged as before, and an
# answer that went unread is typed again after RETRY_S.
ANSWER_QUIET_S = 0.1
# "Where is the cursor?" (ECMA-48 DSR 6). busybox's line editor sends it right after
# its prompt, once it has the terminal in its own mode and is about to read
# (libbb/lineedit.c read_line_input, ask_terminal): output ending in it is a shell
# provably waiting for a line, answered without a quiet spell.
TERMINAL_QUERY = b"\x1b[6n"
MAX_ATTEMPTS = 3
ENTER = "\r"  # what a terminal's Enter key sends
SHELL_PROOF = "echo harness-shell-$((6*7))-ok"
# With the device probe, the proof also turns the terminal's echo off until the device
# checks' line (probe.WORKS) turns it on again: the guest echoing each of the probe's
# two long lines a character at a time through the emulated UART took 0.15-0.25 s
# (busybox ash under TCG; with echo off the tty's line discipline takes a line at once,
# and ash and readline echo nothing). A guest without stty keeps its echo; nothing else
# changes: the markers are the shell's output either way.
QUIET_PROOF = "stty -echo 2>/dev/null; " + SHELL_PROOF
SHELL_PROVEN = re.compile(r"(?:^|\s)harness-shell-42-ok\s*$")
_PROMPT_KINDS = (Kind.FAIL_PROMPT, Kind.LOGIN_PROMPT, Kind.PASSWORD_PROMPT, Kind.SHELL_PROMPT)
_ANSWERED = (Kind.LOGIN_PROMPT, Kind.PASSWORD_PROMPT, Kind.SHELL_PROMPT)


class Conversation(WatcherState):
    """The watcher's part that acts when the console goes quiet (watcher.py's tick
    and end_of_log call it)."""

    # --- the end of the output: prompts and the login conversation -----------------
    def _answer_early(self, now: float) -> Verdict | Reply | None:
        """Before QUIET_S: the answer to a login, password or shell prompt that ends
        the output, once the guest waits at it (ANSWER_QUIET_S of quiet, or a line
        editor's terminal query after a shell prompt). Anything that would decide
        (a failing prompt, an emergency shell, a failure on the last line) waits for
        QUIET_S as before."""
        quiet = now - self._last_output
        if self._acted_at == self._last_output or self._guest_end is not None:
            return None
        tail = self._text.partial
        if self.ready or not tail.text.strip() or self.table.first(Kind.FAIL, tail.text):
            return None
        found = [p for kind in _PROMPT_KINDS if (p := self._prompt(kind, tail.text))]
        if len(found) != 1 or found[0].kind not in _ANSWERED:
            return None
        prompt = found[0]
        if prompt.kind is Kind.SHELL_PROMPT and self.stage == "initramfs":
            return None  # an emergency shell: decided after QUIET_S
        asked = self._asked and prompt.kind is Kind.SHELL_PROMPT
        if not (asked or quiet >= ANSWER_QUIET_S):
            return None
        self._acted_at = self._last_output
        return self._at_end_of_output(now, live=True)

    def interrupted(self) -> tuple[str, dict[str, float]]:
        """How far the guest had got when a live watch was interrupted (Ctrl-C,
        SIGTERM): the stage and stage times so far, and `login` at the time of the
        prompt when the output ends at a login or password prompt, or a shell prompt in
        userspace, not yet answered (ANSWER_QUIET_S), as the judge of the saved log
        would say."""
        # A shell prompt counts only in userspace: before it, an emergency shell's.
        kinds: tuple[Kind, ...] = (Kind.LOGIN_PROMPT, Kind.PASSWORD_PROMPT)
        kinds += (Kind.SHELL_PROMPT,) if self.stage == "userspace" else ()
        waiting = any(self._prompt(kind, self._text.partial.text) for kind in kinds)
        if waiting and self.verdict is None and self._guest_end is None:
            self._reach("login", self._last_output)
        return self.stage, dict(self.stage_times)

    def _back_after_probe(self) -> bool:
        """The shell showed its prompt again after the device checks' end: it ran the
        probe's two lines after the proof and waits, every line between judged."""
        tail = self._text.partial
        return (
            self._probed is not None
            and tail.number > self._probed.number
            and self._prompt(Kind.SHELL_PROMPT, tail.text) is not None
        )

    def _at_end_of_output(self, now: float, live: bool) -> Verdict | Reply | None:
        partial, last_line = self._text.partial, self._guest_end or self._last_line
        if self._guest_end is not None:  # what follows is the host's terminal
            partial = Line(partial.number, "")
        tails = [partial] if live else saved_log_tails(partial, last_line)
        for tail in tails:
            if self.ready and self.ready.search(tail.text):
                self._reach("login", now)
                self._talk, self._proven_at, self._proof = Talk.PROVEN, now, tail
                self._proof_kind = "ready"
                return None if live else self._decide("pass", "login", "login", tail)
            failure = self.table.first(Kind.FAIL, tail.text) if tail.text.strip() else None
            if failure is not None:
                self._reach(failure.stage, now)
                return self._decide("fail", self.stage, failure.reason, tail)
        last = self.table.first(Kind.FAIL_PROMPT, last_line.text)
        if not live and last is not None and last.stage == "none" and not self._at_shell:
            # The emulator's end, then the prompt of the terminal it ran in (after a
            # command at the guest's shell, that shell reports its own programs so).
            return self._decide("fail", self.stage, last.reason, last_line)
        found = (
            (p, tail)
            for tail in tails
            for kind in _PROMPT_KINDS
            if (p := self._prompt(kind, tail.text)) and not (p.stage == "none" and self._at_shell)
        )
        prompt, tail = next(found, (None, tails[0] if tails else last_line))
        if prompt is None and self._overrun is not None and self._talk is Talk.WAITING:
            # The last prompt was written over by messages; it still waits for input.
            prompt, tail = self._overrun
        if prompt is None:
            return self._nudge(now) if live else None
        if prompt.kind is Kind.FAIL_PROMPT:
            self._reach(prompt.stage, now)
            return self._decide("fail", self.stage, prompt.reason, tail)
        if prompt.kind is Kind.SHELL_PROMPT and not live and self._hosts(tail):
            return None  # the guest's console ended before it
        if prompt.kind is Kind.SHELL_PROMPT and self.stage == "initramfs":
            # An interactive shell before the real root is an emergency shell.
            return self._decide("fail", self.stage, "emergency-shell", tail)
        if not live:
            return self._saved_log_ends_at(prompt, tail, now)
        return self._answer(prompt, tail, now)

    def _hosts(self, tail: Line) -> bool:
        """A shell prompt that ends a saved log of a boot that never ran init, or a
        user@host prompt before the real root: the host's terminal after QEMU, not
        the guest's (an initramfs's rescue shell has no user@host)."""
        cycle = STAGES.index(self._cycle)
        if STAGES.index("none") < cycle < STAGES.index("initramfs"):
            return True
        return cycle < STAGES.index("userspace") and "@" in tail.text

    def _saved_log_ends_at(self, prompt: Pattern, tail: Line, now: float) -> Verdict | None:
        """A saved log that ends waiting at a login, password or shell prompt reached
        login: someone else's conversation there (a refused password) is not ours.
        In our own log the conversation was the harness's: refused, it failed."""
        self._reach("login", now)
        if self.own_log:
            refusal = self._refusal()
            if refusal is not None:
                return self._decide("fail", "login", "login-failed", refusal)
            if prompt.kind is Kind.PASSWORD_PROMPT:
                return None
        self._proof_kind = self._proof_kind or "prompt"
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
                    self._proof_kind = "prompt"
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
        proof = QUIET_PROOF if self.probe_devices and not self.ready else SHELL_PROOF
        return self._say(Talk.PROOF_SENT, proof + ENTER, now)

    def _say(self, talk: Talk, text: str, now: float) -> Reply:
        self._talk, self._said_at = talk, now
        return Reply(text)
