"""The user's terminal while `harness run` shows a boot: the guest's text and colour
reach it, its cursor moves, screen clears and terminal queries do not, and
`--interactive` hands the raw console over only after the verdict."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest
from conftest import FIXTURES, ROOT, qemu_processes

from harness.console.terminal import TerminalFilter
from harness.model import Image

# Any escape sequence, control string or C1 control a terminal would act on.
ESCAPE = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|.)|\xc2[\x80-\x9f]", re.DOTALL)
COLOUR = re.compile(rb"\x1b\[[0-9;:]*m")


def escapes_other_than_colour(shown: bytes) -> list[bytes]:
    return [m.group() for m in ESCAPE.finditer(shown) if not COLOUR.fullmatch(m.group())]


def test_the_filter_keeps_text_and_colour_and_drops_moves_clears_and_queries() -> None:
    console = (
        b"\x1b[2J\x1b[01;01HUEFI firmware\x1b[=3h\x1b[6n\x1b[c\x1b[>c\x1b[18t"
        b"\x1b]0;title\x07\x1b]11;?\x1b\\\x1bP+q544e\x1b\\\x1bc\x1b7\x1b(0\x0e\x0f\x07\x00"
        b"\x1b[0;32mOK\x1b[0m caf\xc3\xa9 \xc2\x9b6n\xc2\xa0x\r\nlogin: "
    )
    shown = TerminalFilter().feed(console)
    assert shown == b"UEFI firmware\x1b[0;32mOK\x1b[0m caf\xc3\xa9 \xc2\xa0x\r\nlogin: "


@pytest.mark.parametrize("log", sorted(FIXTURES.glob("consoles/*.log")), ids=lambda p: p.stem)
def test_the_filter_is_the_same_whatever_the_chunks(log: Path) -> None:
    """Real consoles, fed whole and cut at every byte, give the same bytes, and
    nothing but colour is left that a terminal would act on."""
    data = log.read_bytes()
    whole = TerminalFilter().feed(data)
    cut = TerminalFilter()
    assert b"".join(cut.feed(data[i : i + 1]) for i in range(len(data))) == whole
    assert escapes_other_than_colour(whole) == []
    assert re.sub(rb"\s", b"", whole)  # the text is still there


def test_the_filter_holds_a_sequence_cut_by_a_read_and_bounds_a_long_one() -> None:
    f = TerminalFilter()
    assert f.feed(b"ab\x1b[") == b"ab"
    assert f.feed(b"6") == b""
    assert f.feed(b"ncd\x1b[0;3") == b"cd"
    assert f.feed(b"1mred\xc2") == b"\x1b[0;31mred"
    assert f.feed(b"\x9b2J") == b"\r\n"
    assert f.feed(b"\x1b[" + b"1;" * 10_000 + b"m!") == b"!"  # not a colour anyone means


def test_interactive_without_a_terminal_is_one_line_before_anything_boots(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "debian-12-tiny/none/virt/mmio",
         "--interactive", "--out", str(tmp_path / "out")],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == ["harness run: --interactive needs a terminal"]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert time.monotonic() - started < 10
    assert not (tmp_path / "out").exists()  # nothing booted, nothing written
    assert not qemu_processes(str(tmp_path))


def test_an_aavmf_boot_on_a_terminal_keeps_the_command_line_and_asks_the_terminal_nothing(
    tiny: Image, tmp_path: Path
) -> None:
    """On a pty, as a user sees it: AAVMF's clear-screen and the shell's cursor
    query (`ESC [ 6 n`, whose answer would land in the user's shell as `;24R`) are
    in the console log but never reach the terminal."""
    child = pexpect.spawn(
        sys.executable, ["-m", "harness.cli", "run", "debian-12-tiny/aavmf/virt/pci", "--out", str(tmp_path)],
        cwd=str(ROOT), timeout=180, dimensions=(24, 80),
    )  # fmt: skip
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    shown = child.before
    assert child.exitstatus == 0, shown[-2000:]
    log = (tmp_path / "console.log").read_bytes()
    assert b"\x1b[2J" in log and b"\x1b[6n" in log  # the guest did send them
    assert escapes_other_than_colour(shown) == []
    assert shown.startswith(b"/usr/bin/qemu-system-aarch64 -name ")
    assert b"UEFI firmware" in shown and b"debian-12-tiny login: " in shown
    assert re.search(rb"\nPASS debian-12-tiny/aavmf/virt/pci login \d+\.\ds\r\n", shown)


def test_interactive_prints_the_verdict_then_hands_over_on_its_own_line(
    tiny: Image, tmp_path: Path
) -> None:
    child = pexpect.spawn(
        sys.executable, ["-m", "harness.cli", "run", "debian-12-tiny/none/virt/mmio", "--interactive", "--out", str(tmp_path)],
        cwd=str(ROOT), timeout=120, encoding="utf-8", codec_errors="replace",
    )  # fmt: skip
    try:
        child.expect(r"\r\n(PASS debian-12-tiny/none/virt/mmio login \d+\.\ds)\r\n")
        verdict = child.match.group(1)
        child.expect_exact("[harness: the console is yours; Ctrl-] returns, Ctrl-A X quits QEMU]")
        assert child.before.strip() == ""  # nothing between the verdict and the handover
        child.sendline("echo typed-by-$((3*3))-hands")
        child.expect_exact("typed-by-9-hands")
        child.send("\x1d")  # Ctrl-]
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert child.before.rstrip().splitlines()[-2:] == [verdict, f"results in {tmp_path}"]


def _attributes_in_force(captured: str) -> set[str]:
    """The SGR attributes set at the end of `captured` (tmux capture-pane -e, which
    writes each change of colour or attribute as an SGR sequence): empty when the
    text ends in the terminal's default colours."""
    on: set[str] = set()
    for params in re.findall(r"\x1b\[([0-9;:]*)m", captured):
        codes = iter(params.replace(":", ";").split(";"))
        for code in codes:
            n = int(code or 0)
            if n == 0:
                on.clear()
            elif n in (38, 48):  # 38;5;N or 38;2;R;G;B
                on.add("fg" if n == 38 else "bg")
                kind = next(codes, "5")
                for _ in range(1 if kind == "5" else 3):
                    next(codes, None)
            elif 30 <= n <= 37 or 90 <= n <= 97:
                on.add("fg")
            elif 40 <= n <= 47 or 100 <= n <= 107:
                on.add("bg")
            elif n == 39:
                on.discard("fg")
            elif n == 49:
                on.discard("bg")
            elif n == 22:
                on -= {"1", "2"}
            elif 23 <= n <= 29:
                on.discard(str(n - 20))
            else:
                on.add(str(n))
    return on


class Tmux:
    """A private tmux server (its own socket) with one bash whose prompt is `mysh$ `:
    a real terminal, as the user's."""

    def __init__(self, socket: str, width: int, height: int) -> None:
        self.base = ["tmux", "-L", socket]
        env = "env -i PATH=/usr/bin:/bin TERM=xterm-256color PS1='mysh$ ' bash --norc --noprofile"
        subprocess.run([*self.base, "new-session", "-d", "-x", str(width), "-y", str(height),
                        "-c", str(ROOT), env], check=True)  # fmt: skip

    def type(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", *keys], check=True)

    def screen(self, colours: bool = False) -> str:
        flags = ["-e"] if colours else []
        proc = subprocess.run([*self.base, "capture-pane", "-p", "-J", "-S", "-", *flags],
                              capture_output=True, text=True, check=True)  # fmt: skip
        return proc.stdout

    def wait_for(self, text: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.3)
        raise AssertionError(f"{text!r} not on the terminal:\n{self.screen()[-3000:]}")

    def cursor_visible(self) -> bool:
        proc = subprocess.run([*self.base, "display", "-p", "#{cursor_flag}"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        return proc.stdout.strip() == "1"

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], check=False)


def test_after_the_run_the_users_prompt_has_its_own_colours_cursor_and_characters(
    tiny: Image, tmp_path: Path
) -> None:
    """On a real terminal (tmux): AAVMF's GRUB leaves its colours set, and in the
    handed-over console the guest sets a red background, hides the cursor and picks
    line-drawing characters. The verdict, before and after the handover, and the
    user's shell prompt afterwards are in the terminal's default colours, the cursor
    is visible and `mysh$` reads as typed."""
    harness = f"{sys.executable} -m harness.cli"
    term = Tmux(f"harness-test-{tmp_path.name}", 100, 30)
    try:
        term.type(f"{harness} run debian-12-tiny/aavmf/virt/pci --interactive --out {tmp_path}; echo after-$((2+2))", "Enter")  # fmt: skip
        term.wait_for("Ctrl-A X quits QEMU]", 240)
        # Waited for as the shell's answer, not the typed command's echo.
        term.type("printf '\\033[41;1mRED-%d\\033[?25l\\033(0' $((6*7))", "Enter")
        term.wait_for("RED-42", 30)
        term.type("C-]")
        screen = term.wait_for("after-4", 30)
        coloured = term.screen(colours=True)
        visible = term.cursor_visible()
    finally:
        term.close()
    log = (tmp_path / "console.log").read_bytes()
    assert b"\x1b[30m\x1b[47m" in log  # GRUB did set its colours
    assert len(re.findall(r"\nPASS debian-12-tiny/aavmf/virt/pci login", screen)) == 2
    before_handover = coloured[: coloured.index("PASS debian-12-tiny/aavmf")]
    assert _attributes_in_force(before_handover) == set()
    assert _attributes_in_force(coloured[: coloured.rindex("PASS debian-12-tiny/aavmf")]) == set()
    assert _attributes_in_force(coloured) == set()
    assert screen.rstrip().splitlines()[-2:] == ["after-4", "mysh$"]
    assert visible
