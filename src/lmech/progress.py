"""How long work reports progress, without the library depending on a terminal.

Library code calls a :class:`Progress`; the CLI passes one that draws a Rich progress bar, and
everything else gets :data:`NO_PROGRESS`.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def task(self, description: str, total: int) -> None:
        """Start a new task of ``total`` units."""

    def advance(self, units: int = 1) -> None:
        """Mark ``units`` more of the current task done."""


class _NoProgress:
    def task(self, description: str, total: int) -> None:
        pass

    def advance(self, units: int = 1) -> None:
        pass


NO_PROGRESS: Progress = _NoProgress()
