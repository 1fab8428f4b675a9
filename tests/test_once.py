"""conftest.once(): what several test files read is made once per session, and a
failed making is told to every later asker instead of being tried again."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from conftest import once


def test_a_directory_is_made_once_and_a_failure_is_told_not_retried(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    name = f"test-{uuid.uuid4().hex}"  # this test's own, in every worker
    made: list[Path] = []

    def make(where: Path) -> None:
        (where / "run.txt").write_text("booted")
        made.append(where)

    first = once(tmp_path_factory, name, make)
    again = once(tmp_path_factory, name, make)
    assert first == again and made == [first] and (first / "run.txt").read_text() == "booted"

    tries: list[int] = []

    def broken(where: Path) -> None:
        tries.append(1)
        raise AssertionError("qemu said no")

    with pytest.raises(AssertionError, match="qemu said no"):
        once(tmp_path_factory, f"{name}-broken", broken)
    with pytest.raises(pytest.fail.Exception, match="AssertionError: qemu said no"):
        once(tmp_path_factory, f"{name}-broken", broken)
    assert tries == [1]
