"""The pattern rows of userspace, the login and the emulator's own words, in table
order (see patterns.py)."""

from __future__ import annotations

from harness.console.rows import F, H, Kind, Pattern, S

ROWS: tuple[Pattern, ...] = (
    # --- userspace -----------------------------------------------------------------
    # systemd's emergency mode in the initrd (dracut, mkinitcpio's systemd hook) is the
    # initramfs's; after the switch to the real root it is userspace's (stage reached).
    Pattern(
        "systemd-emergency",
        F,
        "initramfs",
        r"You are in (?:emergency|rescue) mode|Welcome to (?:emergency|rescue) mode"
        r"|Give root password for maintenance|Press Enter for maintenance"
        r"|\(or (?:press|type) Control-D to continue\)"
        r"|Cannot open access to console, the root account is locked",
        "emergency-shell",
    ),
    # systemd waits on a unit (a device from fstab, the network); with no time limit it
    # waits for ever, so this names what a boot that stops here was waiting for. Its
    # initrd prints these too: the stage is the least they show.
    Pattern(
        "systemd-job-waiting",
        H,
        "initramfs",
        r"A start job is running for |Job \S+/start running \(",
        "start-job-waiting",
    ),
    # The cause of the emergency shell that follows (systemd's job timeout, as in
    # "[ TIME ] Timed out waiting for device /dev/disk/by-label/root."): see the watcher.
    Pattern(
        "systemd-device-timeout",
        H,
        "initramfs",
        r"Timed out waiting for device ",
        "root-not-found",
    ),
    # systemd's status lines ("[  OK  ] Reached target ..."): systemd runs, in the initrd
    # at least (src/core/job.c, unit.c status messages); a log may start with them.
    Pattern(
        "systemd-status",
        S,
        "initramfs",
        r"^\[\s*(?:OK|FAILED|DEPEND|TIME|SKIP)\s*\] \S",
        anytime=True,
    ),
    # ... and units only the real root has: userspace.
    Pattern(
        "systemd-userspace-unit",
        S,
        "userspace",
        r"^\[\s*OK\s*\] (?:Reached target .*(?:Multi-User System|Login Prompts|Graphical Interface)"
        r"|Started .*(?:Getty on |User Login Management))",
    ),
    # systemd as PID 1 crashed (src/core/crash-handler.c): nothing will start any more.
    Pattern(
        "init-crash",
        F,
        "userspace",
        r"Freezing execution\.|Caught <[^>]+>(?:,| from )",
        "init-crash",
    ),
    # FreeBSD's rc gave up (fsck of a file system failed) and init drops to single
    # user mode, asking for a shell (libexec/rc/rc.d/fsck, sbin/init/init.c).
    Pattern(
        "freebsd-single-user",
        F,
        "userspace",
        r"^ERROR: ABORTING BOOT \(sending SIGTERM to parent\)!"
        r"|^Enter full pathname of shell or RETURN for /bin/sh: ?$",
        "emergency-shell",
    ),
    Pattern(
        "userspace-start",
        S,
        "userspace",
        r"Run /(?!init )\S+ as init process|INIT: version \d|OpenRC .* is starting up"
        r"|Please press Enter to activate this console\."  # busybox init, no getty
        r"|^<<< NixOS Stage 2 >>>|^Setting host(?:uuid|id): "  # FreeBSD's rc starts
        # systemd leaves the initrd for the real root it mounted (src/core/main.c).
        r"|systemd\[1\]: Switching root\."
        r"|Welcome to (?!GRUB|emergency|rescue)(?!.*\((?:Initramfs|initrd)\)!).+!",
    ),
    # --- login ---------------------------------------------------------------------
    # Refused logins are tried again (a cloud image may set its password after the
    # prompt shows); the conversation fails the cell after the last attempt.
    Pattern("login-refused", H, "login", r"Login incorrect|Login timed out", "login-failed"),
    # agetty "<host> login: ", busybox "(none) login: ", agetty --nohostname "login: ":
    # the whole line, so a sentence ending in "to login: " (a motd, an issue file) is none.
    Pattern("login-prompt", Kind.LOGIN_PROMPT, "login", r"^\s*(?:\S+ )?login: ?$"),
    # The same prompt once answered: the user name echoed after it, alone on the line
    # (how a saved log shows that login was reached).
    # agetty --autologin says so after the name (term-utils/agetty.c).
    Pattern("login-answered", S, "login", r"^(?:\S+ )?login: \S+(?: \(automatic login\))?\s*$"),
    # login(1) and pam_lastlog print this only after a login succeeded.
    Pattern("login-succeeded", S, "login", r"^Last login: \w{3} \w{3} [ \d]\d "),
    # A shell prompt with a command typed after it ("root@vm1:~# ls"): someone is at
    # the guest's shell. A command running QEMU is left out: the host's shell, as a
    # report starts.
    Pattern(
        "shell-command",
        S,
        "login",
        r"^(?:\S+@[\w.-]+(?::\S*)? ?[#$]|\[\S+@[^\]]+\][#$]) (?!.*\bqemu)[\w./~-]",
        typed=True,
    ),
    # The prompts without a user@host ("$ uname -a", "/ # ls", "sh-5.2# ls"), which an
    # initramfs's shell prints too. Bare "# " is left out (config files start with it).
    Pattern(
        "shell-command-bare",
        S,
        "login",
        r"^(?:(?:[~/]\S* )?\$|[~/]\S* #|(?:ba|z|k|da)?sh-\d+(?:\.\d+)*[#$])"
        r" (?!.*\bqemu)[\w./~-]",
        initramfs_has_it=True,
        typed=True,
    ),
    Pattern("password-prompt", Kind.PASSWORD_PROMPT, "login", r"[Pp]assword: ?$"),
    # "root@host:~# ", "[root@host ~]# ", "/ # ", "sh-5.2# ", "~ $ ". Only ever a
    # candidate: the harness proves a shell by having it compute something.
    Pattern("shell-prompt", Kind.SHELL_PROMPT, "login", r"(?:^|[\w\]~/:)@-] ?)[#$] ?$"),
    # --- the emulator (a log captured from QEMU's terminal) ----------------------------
    # Quit by its user or killed (chardev/char-mux.c on Ctrl-A x, system/runstate.c on a
    # signal): the guest's console ends at the line before, whatever the host prints.
    Pattern(
        "emulator-quit",
        S,
        "none",
        r"^QEMU: Terminated|qemu-system-[\w-]+: terminating on signal \d+",
        guest_gone=True,
    ),
    # QEMU's own last words: its error_report() lines ("qemu-system-aarch64: ..."), TCG's
    # cpu_abort ("qemu: fatal:"), glib's g_assert ("**" then "ERROR:file:line:func:",
    # "Bail out! ERROR:" under G_TEST) and a shell reporting it killed by a signal. Not
    # the guest's doing; stage "none" leaves the stage reached as it was.
    Pattern(
        "emulator-died",
        F,
        "none",
        r"(?:^|\s)qemu-system-[\w-]+: (?!.*\b(?:warning|info): )(?!terminating on signal)\S"
        r"|^qemu: (?:fatal|hardware error|uncaught target signal)|^Bail out! "
        r"|^(?:\*\* ?)?ERROR:\S+:\d+:\S+: |error: kvm run failed"
        r"|^\w*sh: .*\b(?:abort|[Aa]borted|segmentation fault|bus error|killed)\b.*\bqemu"
        # bash's report of a script's job: "./run.sh: line 12: 4242 Aborted  qemu-..."
        r"|^\S+: line \d+: +\d+ (?:Aborted|Segmentation fault|Bus error|Killed"
        r"|Illegal instruction|Trace/breakpoint trap)\b.*\bqemu",
        "emulator-crash",
        last_words=True,
    ),
    # A shell's report of a process killed by a signal: QEMU's, when it ends the log (a
    # guest's own shell says the same of its programs, so only at the end).
    Pattern(
        "emulator-aborted",
        Kind.FAIL_PROMPT,
        "none",
        r"^(?:Aborted|Segmentation fault|Bus error|Illegal instruction|Killed)"
        r"(?: \(core dumped\))?\s*$",
        "emulator-crash",
    ),
)
