"""Printing tracker text on a terminal: control characters escaped, markup never interpreted.

Ticket subjects, comments and error messages come from anyone who can write in a tracker. A
terminal interprets ESC sequences (colours, cursor moves, window titles, OSC 8 links, even
clipboard writes), so every C0/C1 control character except the line break tiersync itself
puts between cell lines is printed as a visible escape (``\\x1b``, ``\\r``, ``\\u009b``), and
rich markup in tracker text (``[red]``) is printed as typed.
"""
from __future__ import annotations

import json
from typing import IO, Any

from rich.text import Text

_ESCAPES = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}


def escape_control(text: Any, *, keep_newlines: bool = False) -> str:
    """``text`` with control characters (C0, DEL, C1, and Unicode bidi overrides) escaped."""
    out = []
    for char in str(text):
        code = ord(char)
        if char == "\n" and keep_newlines:
            out.append(char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0x80 <= code < 0xA0 or 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def cell(*lines: Any) -> Text:
    """A table cell: each line escaped, lines joined by tiersync's own line breaks."""
    return Text("\n".join(escape_control(line) for line in lines if line is not None))


def write_json(data: Any, stream: IO[str]) -> None:
    """JSON for scripts: full values, control characters escaped by JSON itself (ASCII)."""
    stream.write(json.dumps(data, default=str, indent=2, ensure_ascii=True) + "\n")


NOTHING = "nothing to show: {what}"


def nothing_line(what: str) -> str:
    """The explicit line an empty listing prints instead of an empty table."""
    return NOTHING.format(what=what)
