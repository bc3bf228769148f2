"""Measuring coroutines: the chapter's `async_timed` decorator and a table of named timings."""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

import pandas as pd
from tqdm import tqdm

P = ParamSpec("P")
R = TypeVar("R")


class Timings:
    """Named measurements collected as you go, then one pandas table to compare and plot."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def record(self, name: str, seconds: float, **extra: Any) -> None:
        self.rows.append({"name": name, "seconds": seconds, **extra})

    @asynccontextmanager
    async def measure(self, name: str, **extra: Any) -> AsyncIterator[None]:
        """`async with timings.measure("sequential"): ...` records how long the block took."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.record(name, time.perf_counter() - start, **extra)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(dict.fromkeys(["name", "seconds", *self._extra_columns()])))

    def _extra_columns(self) -> list[str]:
        return [key for row in self.rows for key in row if key not in ("name", "seconds")]


def async_timed(name: str | None = None, *, timings: Timings | None = None, quiet: bool = False
                ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Decorate a coroutine function to print (and optionally record) how long each call took.

    As in the chapter, but the output names the function instead of printing its repr and
    arguments (which hold memory addresses that change on every run).
    """

    def decorate(func: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        label = name or func.__name__

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            start = time.perf_counter()
            try:
                return await func(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                if timings is not None:
                    timings.record(label, elapsed)
                if not quiet:
                    print(f"{label} finished in {elapsed:.4f} s")

        return wrapper

    return decorate


@asynccontextmanager
async def elapsed_bar(desc: str, *, every: float = 0.5) -> AsyncIterator[None]:
    """A sign of life for one long await that has no steps to count (a single executemany, say):
    a tqdm line on stderr whose elapsed time ticks while the block runs."""
    bar = tqdm(desc=desc, bar_format="{desc}: {elapsed} elapsed", file=sys.stderr)

    async def tick() -> None:
        while True:
            await asyncio.sleep(every)
            bar.refresh()

    ticker = asyncio.create_task(tick())
    try:
        yield
    finally:
        ticker.cancel()
        bar.close()
