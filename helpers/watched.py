"""A connection that records what an exercise's answer does with it, for the exercise's check.

Some rules of an exercise are about *how* the answer gets its result: "use a cursor, not a
LIMIT/OFFSET query per row", "skip rows with `forward` instead of reading them".  The result
alone cannot tell; `Watched` can.  The check hands the answer a `Watched(connection)` instead of
the connection: every attribute is the connection's own, `calls` lists the connection's methods
the answer called, in order, and `rows_read` counts the rows its cursors handed to Python (by
`fetch`, `fetchrow` or `async for`; a `forward` reads none).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any

import asyncpg


class Watched:
    """`connection`, seen through the calls an answer makes on it."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection
        self.calls: list[str] = []
        self.rows_read = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.connection, name)
        if callable(attribute):
            self.calls.append(name)
        return attribute

    def cursor(self, query: str, *args: Any, **kwargs: Any) -> WatchedCursorFactory:
        self.calls.append("cursor")
        return WatchedCursorFactory(self, self.connection.cursor(query, *args, **kwargs))


class WatchedCursorFactory:
    """What `Watched.cursor()` returns: awaited, a counting cursor; iterated, counted rows."""

    def __init__(self, watched: Watched, factory: Any) -> None:
        self._watched = watched
        self._factory = factory

    def __await__(self) -> Generator[Any, None, WatchedCursor]:
        return self._open().__await__()

    async def _open(self) -> WatchedCursor:
        return WatchedCursor(self._watched, await self._factory)

    async def __aiter__(self) -> AsyncIterator[asyncpg.Record]:
        async for row in self._factory:
            self._watched.rows_read += 1
            yield row


class WatchedCursor:
    """An asyncpg `Cursor` whose `fetch` and `fetchrow` count the rows they return."""

    def __init__(self, watched: Watched, cursor: Any) -> None:
        self._watched = watched
        self._cursor = cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)  # forward() and the rest, as they are

    async def fetch(self, n: int, **kwargs: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._cursor.fetch(n, **kwargs)
        self._watched.rows_read += len(rows)
        return rows

    async def fetchrow(self, **kwargs: Any) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._cursor.fetchrow(**kwargs)
        self._watched.rows_read += row is not None
        return row
