"""What the puzzle commands (``hrm-train``, ``hrm-eval``, ``hrm-demo``) share: one-line usage errors.

A bad argument is answered ``error: <what> (see <command> --help)`` on stderr with exit status 2,
like every other bad input of these commands, never argparse's usage block or a traceback.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


class UsageError(ValueError):
    """A command-line argument that argparse refused."""


def command_name(module: str) -> str:
    """``hrm-eval`` when run as that console script, else ``python -m <module>``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name.startswith("hrm-") else f"python -m {module}"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors raise :class:`UsageError` (``main`` prints them in one line)."""

    def __init__(self, module: str, doc: str | None):
        super().__init__(
            prog=command_name(module), description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
        )

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see {self.prog} --help)")


def int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is not allowed: it must be >= {minimum}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def output_file(text: str) -> str:
    """An argparse type: a file path that can be written (its folder is made if missing), checked
    before any work is done."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot write {text}: {exc.strerror or exc}") from None
    return text


def fail(exc: BaseException) -> int:
    """Print ``exc`` as a one-line error on stderr; the exit status 2."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    print(f"error: {message}", file=sys.stderr)
    return 2
