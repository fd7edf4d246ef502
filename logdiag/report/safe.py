"""Make untrusted log text safe to print: no rich markup, no terminal control sequences."""

from __future__ import annotations

import re

from rich.text import Text

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(value: object) -> str:
    r"""Replace control characters (ANSI escapes included) with visible ``\xNN`` escapes.

    >>> printable("\x1b[31mred")
    '\\x1b[31mred'
    """
    text = "" if value is None else str(value)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def plain(value: object, style: str = "") -> Text:
    """A rich Text of log content: never parsed as markup, control characters made visible.

    >>> plain("[bold]x[/bold]").plain
    '[bold]x[/bold]'
    """
    return Text(printable(value), style=style)
