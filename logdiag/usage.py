"""Usage errors in one line: ``logdiag: error: …`` on stderr, exit 2, with the nearest option,
command or value named, instead of typer's multi-line boxes (docs/exit-codes.md, issue 29)."""

from __future__ import annotations

import errno
import os
import sys
import typing
from collections.abc import Sequence
from enum import Enum
from typing import Any

import typer

from logdiag.exitcodes import ExitStatus
from logdiag.report.safe import printable
from logdiag.wording import did_you_mean

#: click's ``UsageError``: every usage error typer raises (an unknown option or command, a bad
#: value, a missing argument) is one. typer keeps click private since 0.26 (``typer._click``) and
#: depended on click before; in both, the ``BadParameter`` it exports derives from it.
USAGE_ERROR: type[Exception] = next(
    cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "UsageError" and issubclass(cls, Exception)
)


def run(app: typer.Typer, argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return its exit code; a usage error is one line on stderr.

    Args:
        app: the typer application.
        argv: the arguments after the program's name (default: ``sys.argv[1:]``).

    Returns:
        The exit code: the command's own (a :class:`typer.Exit`'s), 0 when it just returns, 2
        for a usage error, 141 when the reader of ``--help`` went away.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=args, prog_name="logdiag", standalone_mode=False)
    except SystemExit as exc:
        # typer's own answer to a closed stdout (printing --help into `| head`) is exit 1, which to
        # logdiag means "incidents found"; it is the only exit typer takes outside standalone mode.
        context = exc.__context__
        if exc.code == 1 and isinstance(context, OSError) and context.errno == errno.EPIPE:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return ExitStatus.PIPE_CLOSED
        raise
    except USAGE_ERROR as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `logdiag` alone: its help, on stderr
            exc.show()  # type: ignore[attr-defined]
            return ExitStatus.ERROR
        sys.stderr.write(printable(f"logdiag: error: {message(exc, args)}") + "\n")
        return ExitStatus.ERROR
    return code if isinstance(code, int) else ExitStatus.OK


def message(exc: Exception, args: Sequence[str]) -> str:
    """A usage error as one line, with the nearest known name when the user's is unknown.

    Args:
        exc: click's usage error.
        args: the command line it was raised for.
    """
    ctx: Any = getattr(exc, "ctx", None)
    command: Any = ctx.command if ctx is not None else None
    see = f"; see {ctx.command_path if ctx is not None else 'logdiag'} --help"
    option = getattr(exc, "option_name", None)
    if isinstance(option, str) and hasattr(exc, "possibilities"):  # NoSuchOption
        return f"no such option: {option}{_option_hint(option, command, ctx)}{see}"
    if hasattr(command, "list_commands") and exc.args and str(exc.args[0]).startswith("No such command"):
        name = next((arg for arg in args if not arg.startswith("-")), "")
        commands = command.list_commands(ctx)
        return f"no such command: {name}{did_you_mean(name, commands)}; the commands are {', '.join(commands)}"
    param = getattr(exc, "param", None)
    if param is not None and type(exc).__name__ == "MissingParameter":
        what = str(getattr(param, "help", None) or "").rstrip(".")
        what = f": {what[:1].lower()}{what[1:]}" if what else ""
        return f"missing {param.param_type_name} {_display_name(param)}{what}{see}"
    choices = _choices(command, param) if param is not None else []
    value = _given(param, args) if choices else None
    if value is not None:
        return (
            f"{_display_name(param)}: {value!r} is not one of {', '.join(choices)}"
            f"{did_you_mean(value.lower(), choices)}"
        )
    text = " ".join(line.strip() for line in str(getattr(exc, "format_message", exc.__str__)()).splitlines())
    text = text.replace("Value error, ", "")  # typer >= 0.26 words bad values through pydantic
    return f"{text[:1].lower()}{text[1:].rstrip('.')}{see}"


def _option_hint(option: str, command: Any, ctx: Any) -> str:
    """``(did you mean --format?)``; or, for an option of a command given before it,
    ``(--format is an option of analyze, summary, records: put it after the command)``."""
    hint = did_you_mean(option, _option_names(command))
    if hint or not hasattr(command, "list_commands"):
        return hint
    owners = [name for name in command.list_commands(ctx) if option in _option_names(command.get_command(ctx, name))]
    return f" ({option} is an option of {', '.join(owners)}: put it after the command)" if owners else ""


def _option_names(command: Any) -> list[str]:
    """Every option name of a click command: ``--format``, ``-f``, ``--no-fast-path``..."""
    names: list[str] = []
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", "") == "option":
            names += [*param.opts, *param.secondary_opts]
    return names


def _display_name(param: Any) -> str:
    """An option's longest name (``--format``), or an argument's as its help shows it (``DIR``)."""
    if getattr(param, "param_type_name", "") == "option":
        return str(max(param.opts, key=len))
    return str(getattr(param, "metavar", None) or param.name.upper())


def _choices(command: Any, param: Any) -> list[str]:
    """The values a parameter takes, when its type is an Enum (``--format``, ``--input-format``),
    read from the command function's annotation (the same in every typer version)."""
    callback = getattr(command, "callback", None)
    if callback is None:
        return []
    try:
        hint = typing.get_type_hints(callback).get(param.name)
    except (NameError, TypeError):
        return []
    for candidate in (hint, *typing.get_args(hint)):  # Optional[LogFormat] holds it
        if isinstance(candidate, type) and issubclass(candidate, Enum):
            return [str(member.value) for member in candidate]
    return []


def _given(param: Any, args: Sequence[str]) -> str | None:
    """The value the command line gave an option, the last time it was given
    (``--format xml``, ``--format=xml``, ``-f xml``, ``-fxml``), or None."""
    value = None
    opts = [opt for opt in getattr(param, "opts", ()) if opt.startswith("-")]
    for i, arg in enumerate(args):
        if arg == "--":
            break
        for opt in opts:
            if arg == opt and i + 1 < len(args):
                value = args[i + 1]
            elif opt.startswith("--") and arg.startswith(opt + "="):
                value = arg[len(opt) + 1:]
            elif not opt.startswith("--") and arg.startswith(opt) and len(arg) > len(opt) and not arg.startswith("--"):
                value = arg[len(opt):]
    return value
