"""Make untrusted log text safe to show: the one place every renderer escapes it.

Log text is written by whoever can send a statement, name a constraint or raise an error:
terminal control sequences in it (ESC[2J clears the screen, OSC 0 sets the window title, OSC 8
makes a link, BEL, CR and BS hide what came before, U+009B is a one-character CSI) and
bidirectional overrides (which reorder what a reader sees) must reach no terminal or ticket as
they are. :func:`printable` makes them visible; :func:`json_text` escapes them inside JSON, which
keeps their value.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.text import Text

#: C0 and C1 controls but TAB and newline, DEL, and the invisible characters that reorder or
#: break text (bidirectional marks, embeddings, overrides and isolates; line and paragraph separators).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(value: object) -> str:
    r"""Replace control characters (ANSI escapes included) with visible ``\xNN`` escapes.

    >>> printable("\x1b[31mred\u202e")
    '\\x1b[31mred\\u202e'
    """
    text = "" if value is None else str(value)
    return _CONTROL.sub(_escape, text)


def plain(value: object, style: str = "") -> Text:
    """A rich Text of log content: never parsed as markup, control characters made visible.

    >>> plain("[bold]x[/bold]").plain
    '[bold]x[/bold]'
    """
    return Text(printable(value), style=style)


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


#: What json.dumps leaves as it is (with ensure_ascii=False) of :data:`_CONTROL`: all but C0.
_JSON_RAW = re.compile("[\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def json_text(data: Any, indent: int | None = None) -> str:
    r"""``data`` as JSON, UTF-8 text but with every control character escaped (``\u009b``):
    the same value to a JSON reader, nothing a terminal acts on.

    >>> json_text({"a": "\x1b[2J\x9b"})
    '{"a": "\\u001b[2J\\u009b"}'
    """
    return _JSON_RAW.sub(_json_escape, json.dumps(data, ensure_ascii=False, indent=indent))
