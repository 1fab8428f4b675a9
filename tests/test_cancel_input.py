"""cancel.run with input for a command that reads it only after a poll interval
(sfdisk assembling a tiny image's disk on a loaded host): the input is sent once,
whole, and the command's output comes back."""

from __future__ import annotations

from harness import cancel


def test_input_reaches_a_command_slower_than_one_poll() -> None:
    slow = cancel.POLL_S * 5
    proc = cancel.run(["sh", "-c", f"sleep {slow}; cat"], None, text=True, input="label: gpt\n")
    assert (proc.returncode, proc.stdout) == (0, "label: gpt\n")
