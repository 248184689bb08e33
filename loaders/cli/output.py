"""The CLI's two consoles: results on stdout, progress and notes on stderr."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape

err = Console(stderr=True, highlight=False)
# Tables stay readable in logs and pipes too (rich assumes 80 columns off a terminal).
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def say(line: str) -> None:
    """One progress or note line on stderr, as it is (no markup, never wrapped)."""
    err.print(escape(line), soft_wrap=True)
