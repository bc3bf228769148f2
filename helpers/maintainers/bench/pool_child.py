"""One client process of workload 7 (pool_costs.py), run as a script so that it imports only asyncpg.

Protocol, one JSON object per line.  stdin gives the spec: {"dsn", "sql", "product_id",
"methods", "connections", "pattern", "reset"}; the loop ("asyncio" or "uvloop") is its
argument.  The child opens its pool, runs each method once on every connection (which
prepares the statement) and answers {"pids", "rows", "loop"}.  Then each line {"method",
"queries": n} runs n queries and is answered {"start", "end", "cpu"}: `time.monotonic()`
(one clock for every process on the machine, so the parent can join two children's spans)
and this process's CPU seconds.  The child closes its pool and exits when stdin closes.

Running each step in a process of its own gives every step the same start: a fresh
interpreter, its own event loop (asyncio or uvloop) and its own pool.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg


async def skip_reset(connection: asyncpg.Connection) -> None:
    """A `reset` callback that sends nothing: the session state of one user is seen by the next.

    asyncpg still rolls back an open transaction and drops `add_listener` callbacks before
    calling it; RESET ALL, CLOSE ALL, UNLISTEN * and pg_advisory_unlock_all() are skipped.
    """


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def runner(pool: asyncpg.Pool, spec: dict[str, Any], method: str) -> Callable[[int], Awaitable[object]]:
    sql, product_id = spec["sql"], spec["product_id"]

    async def one() -> object:  # the book's pattern: a connection from the pool for each query
        async with pool.acquire() as connection:
            return await getattr(connection, method)(sql, product_id)

    async def acquire_per_query(queries: int) -> object:
        return await asyncio.gather(*(one() for _ in range(queries)))

    async def worker(queries: int) -> None:  # one connection for the whole share of queries
        async with pool.acquire() as connection:
            query = getattr(connection, method)
            for _ in range(queries):
                await query(sql, product_id)

    async def held_per_worker(queries: int) -> object:
        return await asyncio.gather(*(worker(n) for n in _split(queries, spec["connections"])))

    return acquire_per_query if spec["pattern"] == "acquire" else held_per_worker


async def main() -> None:
    spec = json.loads(sys.stdin.readline())
    size = spec["connections"]
    pool = await asyncpg.create_pool(spec["dsn"], min_size=size, max_size=size, max_inactive_connection_lifetime=0,
                                     reset=skip_reset if spec["reset"] == "skipped" else None)
    try:
        held = [await pool.acquire() for _ in range(size)]
        rows = {}
        for connection in held:  # open every connection and prepare (cache) the statement on each
            for method in spec["methods"]:
                result = await getattr(connection, method)(spec["sql"], spec["product_id"])
                rows[method] = len(result) if isinstance(result, list) else int(result is not None)
        pids = [connection.get_server_pid() for connection in held]
        for connection in held:
            await pool.release(connection)
        runs = {method: runner(pool, spec, method) for method in spec["methods"]}
        loop = "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"
        _answer({"pids": pids, "rows": rows, "loop": loop})
        while line := await asyncio.to_thread(sys.stdin.readline):
            request = json.loads(line)
            run, queries = runs[request["method"]], request["queries"]
            cpu, start = time.process_time(), time.monotonic()
            await run(queries)
            end = time.monotonic()
            _answer({"start": start, "end": end, "cpu": time.process_time() - cpu})
    finally:
        await pool.close()


def _answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:] == ["uvloop"]:  # the loop is chosen before it runs, so on the command line
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
