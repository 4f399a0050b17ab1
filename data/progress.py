"""Progress bars for long stages, shown on stderr only when the CLI turns them on for a person at a terminal."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_shown = False  # off for library calls and tests; `earlywarn` turns it on when stderr is a terminal


def show(on: bool) -> None:
    global _shown
    _shown = on


def shown() -> bool:
    return _shown


def track(items: Iterable[T], description: str, total: float | None = None) -> Iterator[T]:
    """`items`, with a Rich progress bar on stderr while they are consumed (and nothing else when bars are off)."""
    if not _shown:
        yield from items
        return
    from rich.console import Console
    from rich.progress import track as rich_track

    yield from rich_track(items, description=description, total=total, console=Console(stderr=True), transient=True)
