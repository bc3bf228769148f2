"""`take`, the async generator notebook 08 writes out in full, kept here for notebook 09 to import."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import TypeVar

T = TypeVar("T")


async def take(source: AsyncIterable[T], n: int) -> AsyncIterator[T]:
    """Yield the first `n` items of `source`, then close it.

    It never asks the source for an (n+1)-th item (the chapter's version does, and so reads
    one row too many from a cursor), and it closes a source that can be closed (an async
    generator's `aclose`), so its `finally` blocks run at once rather than whenever it is
    garbage-collected.  An asyncpg cursor has no `aclose`: its transaction closes it.
    """
    iterator = aiter(source)
    try:
        remaining = n
        while remaining > 0:
            try:
                item = await anext(iterator)
            except StopAsyncIteration:
                return
            yield item
            remaining -= 1
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
