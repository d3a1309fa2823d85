"""Outside text is shown as one line of printable text (issue 9 item 4)."""

from __future__ import annotations

from victron_ble_bms.safetext import plain


def test_terminal_escape_sequences_become_visible() -> None:
    # ESC [ 2 J clears a terminal; OSC 52 writes the clipboard; BEL rings.
    assert plain("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert plain("\x1b]52;c;aGk=\x07") == "\\x1b]52;c;aGk=\\x07"
    assert plain("x\x9b31m") == "x\\x9b31m"  # C1 CSI


def test_newlines_and_bidi_overrides_do_not_reach_the_screen() -> None:
    assert plain("line1\nline2\r") == "line1\\x0aline2\\x0d"
    assert plain("abc\u202edcb") == "abc\\u202edcb"
    assert "\u200b" not in plain("zero\u200bwidth")


def test_markup_is_left_as_text_for_the_renderer_to_show_literally() -> None:
    # Escaping markup is the renderer's job (it must render plain text); plain() keeps it.
    assert plain("[@click=app.quit]Tap me[/]") == "[@click=app.quit]Tap me[/]"


def test_any_value_and_long_text() -> None:
    assert plain(None) == "None"
    assert plain(12) == "12"
    long = plain("n" * 1000)
    assert len(long) == 200 and long.endswith("…")
    assert plain("Ünïcode °C ✓") == "Ünïcode °C ✓"
