"""``python -m logdiag``, and the ``logdiag`` command: the CLI, imported here so that a Ctrl-C
while Python is still importing (a fraction of a second) ends like one later, exit 130 and no
traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from logdiag.cli import main as run
    except KeyboardInterrupt:
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
