from harness.console.text import MAX_LINE, ConsoleText, clean


def lines(*chunks: bytes) -> tuple[list[tuple[int, str]], str]:
    text = ConsoleText()
    out = [(line.number, line.text) for chunk in chunks for line in text.feed(chunk)]
    return out, text.partial.text


def test_crlf_and_cr_cr_lf_end_one_line_each() -> None:
    out, partial = lines(b"one\r\ntwo\r\r\nthree\n")
    assert [t for _, t in out if t] == ["one", "two", "three"]
    assert [n for n, t in out if t] == [1, 2, 3]
    assert partial == ""


def test_prompt_without_newline_stays_partial() -> None:
    _out, partial = lines(b"banner\r\n\r\nhost login: ")
    assert partial == "host login: "


def test_ansi_colour_and_cursor_probe_are_removed() -> None:
    out, partial = lines(b"\x1b[0;32m  OK  \x1b[0m] Started\r\n\x1b[6nroot@h:~# ")
    assert out[0][1] == "  OK  ] Started"
    assert partial == "root@h:~# "


def test_escape_split_across_reads_is_held_back() -> None:
    out, _partial = lines(b"Welcome \x1b[1", b";31mhome\x1b[0m!\n")
    assert out[0][1] == "Welcome home!"


def test_cursor_positioning_breaks_lines() -> None:
    assert clean("a\x1b[2J\x1b[01;01Hb") == "a\r\rb"


def test_cursor_positioning_keeps_the_files_line_numbers() -> None:
    # edk2 clears the screen before its banner: the lines after it keep their numbers.
    out, _ = lines(b"one\n\x1b[2J\x1b[01;01HUEFI firmware\nthree\n")
    assert [(n, t) for n, t in out if t] == [(1, "one"), (2, "UEFI firmware"), (3, "three")]


def test_nul_bytes_and_invalid_utf8_do_not_break_matching() -> None:
    out, _ = lines(b"\x00\x00Kernel \xff\xfepanic\n")
    assert out[0][1] == "Kernel \ufffd\ufffdpanic"


def test_utf8_split_across_reads() -> None:
    out, _ = lines(b"caf\xc3", b"\xa9\n")
    assert out[0][1] == "café"


def test_a_line_without_end_is_cut_into_bounded_pieces() -> None:
    text = ConsoleText()
    pieces = list(text.feed(b"x" * (MAX_LINE * 3 + 5)))
    assert [len(p.text) for p in pieces] == [MAX_LINE] * 3
    assert len(text.partial.text) == 5
