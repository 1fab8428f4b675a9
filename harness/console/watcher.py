"""The console watcher: decides a boot from its console text, as the text arrives.

It is pure: bytes and the time go in, a verdict (or text to type) comes out. The same
object judges a live boot (`feed` + `tick`, with replies typed into the guest) and a
saved log (`feed` + `end_of_log`), so `harness classify` and `harness run` cannot
disagree about what a line means.

Rules, beyond the pattern table:
- A failure line decides at once, wherever it appears, also after a login prompt and
  during the login conversation.
- Prompts count only at the end of the output: live, when the guest has been quiet
  for QUIET_S; in a saved log, at its end. Live, a login, password or shell prompt is
  answered sooner, once the guest waits at it (conversation.py's ANSWER_QUIET_S, or at
  once after the terminal query a line editor sends when it starts reading): an answer
  decides nothing, and every line after it is judged as before.
- Live, a login prompt alone is not a pass. With credentials the watcher logs in and
  has the shell compute something (a shell, not an echo, prints the result); without,
  it presses Enter and needs the prompt to come back. Either way the guest must stay
  free of failures for SETTLE_S after that proof, or, with the device probe, until
  its shell has run the probe's two lines and shown its prompt again (the guest
  worked on after the proof, and every line it printed meanwhile was judged).
- In a saved log, reaching a login prompt is the pass (proof "prompt"): whatever
  conversation someone else had after it does not undo it; a failure line still does.
  Its end is the console going quiet: the last non-blank line, less the `%` or `$` a
  terminal copy adds, is where a prompt waits.
- A failure is placed at the furthest stage shown before it (or on its line).
- A reset: a restart banner of the table, or the log's earliest lines (firmware we
  have no row for) seen again after bootloader or kernel output, or a once-per-start
  banner (U-Boot's) seen again after other output; the MAX_RESTARTS-th is a
  `reset-loop`. Live, QEMU's reset events count instead (`reset`), and so do their
  marks in our own saved log (marks.py, judge.py). After a reset the verdict's stage
  is the new boot's (stage_times keep the first times).
- Causes: an emergency shell after a root-not-found hint (a device systemd or dracut
  timed out on) is `root-not-found`, decided on the cause line. A hint that decides
  when repeated (dracut's devexists hook) decides when the same device is listed
  again, at dracut's `Could not boot.`, after HINT_QUIET_S of silence, at a timeout or
  at the log's end; of several devices listed, the kernel command line's root= (else
  the first) is named.

The watcher is built in three layers, each a file: the state it keeps and how that
becomes a verdict (state.py), the end of the output and the login conversation there
(conversation.py), and the input, line by line (here).
"""

from __future__ import annotations

import re

from harness.console import probe
from harness.console.conversation import ENTER, SHELL_PROVEN, TERMINAL_QUERY, Conversation
from harness.console.conversation import RETRY_S as RETRY_S
from harness.console.conversation import SHELL_PROOF as SHELL_PROOF
from harness.console.patterns import Kind, Pattern, hook_device, root_device
from harness.console.text import Line
from harness.console.verdict import Hint, Talk
from harness.console.verdict import Reply as Reply
from harness.console.verdict import Verdict as Verdict
from harness.model import STAGES

QUIET_S = 0.5
HINT_QUIET_S = 5.0  # silence after a repeating cause hint: dracut repeats it every second
SETTLE_S = 0.5
WRAPPED = 64  # a line at least this long may go on in the next (72, 80 columns)
MAX_RESTARTS = 2
# Live: resets QEMU reported after which the boot got no further than a boot before it;
# one more than this is a reset-loop (a guest may reboot on its way: first-boot scripts).
MAX_STUCK_RESETS = 2
# What writes to a console after its login prompt: the kernel (with or without a
# timestamp or syslog level), cloud-init, systemd.
_OVERRUN = re.compile(
    r"\[\s*\d+\.\d+\]|<\d+>|ci-info: |[Cc]loud-init[ \[]|systemd\["
    r"|\[\s*(?:OK|FAILED|DEPEND|TIME|WARN|INFO|SKIP)\s*\]"  # systemd's status lines
    r"|\s+(?:Starting|Stopping|Reloading|Mounting|Unmounting|Activating|Deactivating) \S"
    # a kernel without printk times: "random: crng init done", "virtio_net virtio0 eth0: ..."
    r"|[A-Za-z][\w.-]*(?: [\w.()-]+){0,2}: \S"
)
# systemd's dependency failure of the root's mount (the initrd's /sysroot).
_ROOT_MOUNT_FAILED = re.compile(r"Dependency failed for .*(?:sysroot|Initrd Root|Root File System)")


class Watcher(Conversation):
    """Judges one boot's console: `feed` it bytes, `tick` it live, `end_of_log` for a
    saved log, `reset` when QEMU reports one."""

    # --- input -------------------------------------------------------------------
    def feed(self, data: bytes, now: float) -> Verdict | None:
        if self.verdict is None and data:
            self._last_output = now
            self._asked = data.endswith(TERMINAL_QUERY)
            for line in self._text.feed(data):
                self._judge_line(line, now)
                if self.verdict is not None:
                    break
        return self.verdict

    def tick(self, now: float) -> Verdict | Reply | None:
        """Called often on a live boot; acts on quiet spells and settle times."""
        if self.verdict is not None:
            return self.verdict
        if self._pending is not None and now - self._last_output >= HINT_QUIET_S:
            return self._decide_pending()
        if self._talk is Talk.SHELL:
            line = probe.SCRIPT if self._part == 0 else probe.WORKS
            return self._say(Talk.PROBING, line + ENTER, now)
        if self._talk is Talk.PROBING:
            if now - self._said_at < 2 * RETRY_S:
                return None  # the probe's output is on its way (lines are still judged)
            self._talk, self._proven_at = Talk.PROVEN, now  # proven, though not probed
        if self._talk is Talk.PROVEN:
            if now - self._proven_at >= SETTLE_S or self._back_after_probe():
                return self._decide("pass", "login", "login", self._proof)
            return None
        if now - self._last_output < QUIET_S:
            return self._answer_early(now)
        if self._acted_at == self._last_output and now - self._said_at < RETRY_S:
            return None
        self._acted_at = self._last_output
        return self._at_end_of_output(now, live=True)

    def end_of_log(self) -> Verdict:
        """The verdict of a saved log that has been fed whole."""
        if self.verdict is not None:
            return self.verdict
        self._typed_at_the_guest(self._last_output)
        if self._other_device is not None:
            pattern, line = self._other_device
            return self._decide("fail", self.stage, pattern.reason, line)
        if self._last_words is not None:  # nothing after them showed the boot going on
            return self._decide("fail", self.stage, "emulator-crash", self._last_words)
        proven = self._talk in (Talk.SHELL, Talk.PROBING, Talk.PROVEN)
        if not proven:
            self._at_end_of_output(self._last_output, live=False)
        if self.verdict is not None:
            return self.verdict
        if proven:
            return self._decide("pass", "login", "login", self._proof)
        if self._pending is not None:
            return self._decide_pending()
        if self._cycle == "login" and not self.own_log:  # then someone else's conversation
            self._proof_kind = self._proof_kind or "prompt"
            return self._decide("pass", "login", "login", self._login_line)
        return self._undecided("incomplete", "log-ended")

    def stopped(self, cause: str) -> Verdict:
        """The verdict of a live boot that ended without one (timeout, QEMU gone). A
        proof that completed (the shell computed) is a pass, never a timeout."""
        if self.verdict is None and self.proven:
            return self._decide("pass", "login", "login", self._proof)
        if self.verdict is None and self._pending is not None:
            return self._decide_pending()
        return self.verdict or self._undecided("fail", cause)

    @property
    def proven(self) -> bool:
        """The guest proved it is up (a shell computed, or the ready pattern showed)."""
        return self._talk in (Talk.SHELL, Talk.PROBING, Talk.PROVEN)

    def reset(self, now: float, log_lines: int = 0) -> Verdict | None:
        """QEMU reported a guest reset (a QMP RESET event, live, or its mark in our
        own saved log): a new boot begins, and the login conversation with it. The
        same stage reached again with no progress more than MAX_STUCK_RESETS times is
        a reset-loop, decided at that reset. `log_lines`: the lines the reset's mark
        adds to the console log here (marks.py), so line numbers stay the log's."""
        if self.verdict is not None:
            return self.verdict
        mark = self._text.skip(log_lines) if log_lines else 0  # the mark's own line
        self.resets += 1
        cycle, best = STAGES.index(self._cycle), STAGES.index(self._best_cycle)
        self._stuck = self._stuck + 1 if self.resets > 1 and cycle <= best else 0
        self._best_cycle = STAGES[max(cycle, best)]
        if self._stuck > MAX_STUCK_RESETS:
            why = f"QEMU reported reset {self.resets}; each boot stopped at {self._cycle}"
            return self._decide("fail", self.stage, "reset-loop", Line(mark, why))
        self._start_over()
        self.prompt_at, self._talk, self._previous = None, Talk.WAITING, ""
        self._probed, self._asked = None, False
        self._last_output = self._acted_at = now
        return None

    # --- lines -------------------------------------------------------------------
    def _judge_line(self, line: Line, now: float) -> None:
        text = line.text
        if not text.strip():
            return
        self._note_prompt(line, now)
        if "command line" in text:
            self._root = root_device(text) or self._root
        if self._suspect is not None and _ROOT_MOUNT_FAILED.search(text):
            self._cause, self._suspect = self._suspect, None
        if self._stages(line, now):
            return
        failure = self.table.first(Kind.FAIL, text) or self.table.first(
            Kind.FAIL, self._previous + text
        )
        at = line
        if failure is not None and failure.any_device and self._root:
            if self._root.lower() not in text.lower():
                # Another device's warning (a resume swap): the root's may follow; if
                # none does, the first decides.
                self._other_device = self._other_device or (failure, line)
                failure = None
        elif self._other_device is not None:
            failure, at = self._other_device
        if failure is not None and failure.last_words:
            # A line wrapped in two matches on both: the first is where they begin.
            self._last_words = self._last_words or line
        elif failure is not None:
            self._typed_at_the_guest(now)
            self._reach(failure.stage, now)
            stage = failure.stage if failure.exact else self.stage
            self._decide("fail", stage, failure.reason, at)
            return
        hint, at = self.table.first(Kind.HINT, text), line
        if hint is None and len(self._previous) >= WRAPPED and not text.startswith("["):
            # A long line a terminal or mail wrapped: the hint spans the two, and was not
            # already seen on the first (a new kernel or systemd message is no wrap).
            joined = self.table.first(Kind.HINT, self._previous + text)
            if joined is not None and self.table.first(Kind.HINT, self._previous) is None:
                hint, at = joined, Line(line.number, self._previous + text)
        if hint is not None and self._note_hint(hint, at, now):
            return
        if SHELL_PROVEN.search(text) or (self.ready and self.ready.search(text)):
            self._reach("login", now)
            shell = self.probe_devices and not self.ready
            self._talk = Talk.SHELL if shell else Talk.PROVEN
            self._proof_kind = "ready" if self.ready and not SHELL_PROVEN.search(text) else "shell"
            self._proven_at, self._proof = now, line
        self._collect_probe(line, now)
        if self.verdict is not None:
            return
        self._previous = text[-256:]
        self._last_line = line

    def _stages(self, line: Line, now: float) -> bool:
        """Progress and resets shown by `line`; True if they decided (a reset loop)."""
        rows = self.table.stages(line.text)
        if self._typed is not None and any(
            r.stage not in ("none", "login") and not r.anytime for r in rows
        ):
            self._typed = None  # the boot starts: the command was the host's, starting it
        if self.stage == "none" and self._restarts == 0 and any(r.typed for r in rows):
            self._typed = self._typed or line
            return False
        past_firmware = STAGES.index(self._cycle) >= STAGES.index("bootloader")
        reset = past_firmware and self._earliest.recur(line.text)
        banners = {" ".join(line.text.split()) for row in rows if row.once_per_start}
        for row in rows:
            if row.restart and STAGES.index(self._cycle) > STAGES.index(row.stage):
                reset = True
        # Printed once each time the machine starts (U-Boot's banner): seen again after
        # its own output, the machine restarted without getting further.
        reset = reset or bool(banners & self._banners and self._last_line.text != line.text)
        if reset and not self.resets_from_qemu and self._count_reset(line):
            return True
        self._banners |= banners
        for row in rows:
            if row.guest_gone:
                self._guest_end = self._last_line
                continue
            if row.initramfs_has_it and self._cycle == "initramfs":
                continue
            self._at_shell = self._at_shell or row.stage == "login"  # logged in, typed
            if row.clears_hint and self._hint is not None and self._hint.stage == row.stage:
                self._hint = None
            self._went_on(row.stage)
            self._reach(row.stage, now)
            if row.stage == "login" and not self._login_line.number:
                self._login_line = line
        if self._restarts == 0:
            self._earliest.learn(line.text, STAGES.index(self.stage) >= STAGES.index("bootloader"))
        return False

    def _typed_at_the_guest(self, now: float) -> None:
        """The command the log started with was typed at the guest's shell: no boot
        started after it (`$ echo c > /proc/sysrq-trigger`, then the Oops)."""
        if self._typed is not None:
            self._reach("login", now)
            self._at_shell = True
            self._login_line = self._login_line if self._login_line.number else self._typed
            self._typed = None

    def _went_on(self, stage: str) -> None:
        """Progress to `stage`: a cause seen in an earlier stage did not stop the boot
        (dracut's timeout scripts found the root after all), and the emulator that
        printed an error before it is still running."""
        self._last_words = self._guest_end = None
        later = STAGES.index(stage)
        if self._pending is not None and later > STAGES.index(self._pending.stage):
            self._pending = None
            self._waited.clear()
        if self._cause is not None and later > STAGES.index(self._cause.stage):
            self._cause = None

    def _count_reset(self, line: Line) -> bool:
        """The guest started over: True if that decided the boot (a reset loop). A
        boot that reached login before it was rebooted (a test that reboots, a
        first-boot reboot after login) starts the count of the loop again."""
        self._restarts += 1
        self._looping = 0 if self._cycle == "login" else self._looping + 1
        ended = self._cycle
        self._start_over()
        if self._looping >= MAX_RESTARTS:
            self._decide("fail", ended, "reset-loop", line)
            return True
        return False

    def _start_over(self) -> None:
        """What a reset clears: the boot's own progress, causes and prompts. The
        verdict tells where the boot now is: a boot that reached login, reset and then
        panicked failed in the kernel (stage_times keep the first times)."""
        self._cycle = self.stage = "none"
        self._banners.clear()
        self._waited.clear()
        self._other_device = None
        self._at_shell = False
        self._earliest.restart()
        self._cause = self._pending = self._hint = self._suspect = None
        self._login_line = Line(0, "")
        self._overrun = None

    def _note_hint(self, hint: Pattern, line: Line, now: float) -> bool:
        """A soft error: kept as the likely reason; a cause kept for the emergency shell
        it may lead to; a repeating cause decides. True if it decided."""
        self._reach(hint.stage, now)
        seen = Hint(hint, line, self.stage)
        # dracut lists every hook it still waits for (the root's, a swap's) each second:
        # a device listed again is the list repeated.
        device = hook_device(line.text) if hint.decides_when_repeated else ""
        again = self._pending is not None and device in self._waited
        if again or (self._pending is not None and hint.gives_up):
            self._decide_pending()
            return True
        if hint.decides_when_repeated:
            self._waited[device] = line
            if self._pending is not None:
                return False  # the same listing goes on
            self._pending = seen
        if hint.reason == "root-not-found":
            # After the switch to the real root, a device systemd timed out on is one of
            # fstab's (a data disk), unless what failed for it is the root's mount.
            early = self._cycle in ("none", "kernel", "initramfs")
            if early or (self._root and self._root in line.text):
                self._cause = seen
            else:
                self._suspect = seen
        self._hint = seen
        return False

    def _note_prompt(self, line: Line, now: float) -> None:
        """A login prompt on a line of its own, or one that other output ran into
        ("host login: [  35.1] cloud-init ...", "host login: ci-info: ..."): messages
        written to the console after getty showed its prompt, common on cloud images.
        Either way the boot reached login."""
        if self._prompt(Kind.LOGIN_PROMPT, line.text) is not None:
            self._reach("login", now)
            self._login_line = self._login_line if self._login_line.number else line
            return
        head, found, rest = line.text.partition("login: ")
        if found and _OVERRUN.match(rest):
            prompt = self.table.first(Kind.LOGIN_PROMPT, head + found)
            if prompt is not None:
                self._reach("login", now)
                self._overrun = (prompt, Line(line.number, head + found))
                self._login_line = self._login_line if self._login_line.number else line

    def _collect_probe(self, line: Line, now: float) -> None:
        """The lines between the probe's markers, then what they say."""
        text = line.text
        if probe.BEGIN in text or probe.WORKS_BEGIN in text:
            self._probe_lines = []
        elif probe.WORKS_END in text and self._probe_lines is not None:
            if self.findings is not None:
                self.findings = probe.with_works(self.findings, self._probe_lines)
            self._probe_lines = None
            if self._talk is Talk.PROBING:
                self._talk = Talk.PROVEN
                self._probed = line
        elif probe.END in text and self._probe_lines is not None:
            self.findings = probe.parse(self._probe_lines)
            self._probe_lines = None
            if self._logins == 0 and self.findings.root_fs == "rootfs":
                # A shell that no login led to, on a / that is still the initramfs: a
                # rescue shell whose messages and prompt no row knew (or `quiet` hid).
                why = "the shell's / is the initramfs (rootfs): the real root was never mounted"
                self._decide("fail", "initramfs", "emergency-shell", Line(line.number, why))
                return
            if self._talk is Talk.PROBING and self._part == 0:
                self._part, self._talk = 1, Talk.SHELL  # the device checks, next
            elif self._talk in (Talk.SHELL, Talk.PROBING):
                # Settled counts from the proof: the probe's time was watched too.
                self._talk = Talk.PROVEN
        elif self._probe_lines is not None and len(self._probe_lines) < 256:
            self._probe_lines.append(text)
