"""One asyncpg client process of the bench, run as a script so that it imports only asyncpg.

Protocol, one JSON object per line.  stdin gives the spec: {"dsn", "sql", "product_id",
"methods", "connections", "workers", "pattern", "reset"}; the loop ("asyncio" or "uvloop") is
its argument.  The child opens its pool, runs each method once on every connection (which
prepares the statement) and answers {"pids", "rows", "loop"}.  Then each line {"method",
"seconds"} runs queries for that long and is answered {"queries", "start", "end", "cpu"}:
`time.monotonic()` (one clock for every process on the machine, so the parent can join two
children's spans) and this process's CPU seconds.  It exits when stdin closes.

A process per client gives every client the same start: a fresh interpreter, its own event
loop and pool, and CPU time that is its own.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

#: Coroutines per `gather` in the book's pattern, per connection: enough that the pool's queue
#: never runs dry within a batch, few enough that a batch ends soon after the window.
BATCH_PER_CONNECTION = 10


async def skip_reset(connection: asyncpg.Connection) -> None:
    """A `reset` callback that sends nothing: the session state of one user is seen by the next.

    asyncpg still rolls back an open transaction and drops `add_listener` callbacks before
    calling it; RESET ALL, CLOSE ALL, UNLISTEN * and pg_advisory_unlock_all() are skipped.
    """


Window = Callable[[float], Awaitable[int]]


def window(pool: asyncpg.Pool, spec: dict[str, Any], method: str) -> Window:
    """The pattern of `spec` as a function: run queries until the deadline, return how many."""
    sql, product_id, workers = spec["sql"], spec["product_id"], spec["workers"]

    async def one() -> None:
        async with pool.acquire() as connection:
            await getattr(connection, method)(sql, product_id)

    async def gather(deadline: float) -> int:  # the book: a coroutine per query, all gathered
        done, batch = 0, BATCH_PER_CONNECTION * spec["connections"]
        while time.monotonic() < deadline:
            await asyncio.gather(*(one() for _ in range(batch)))
            done += batch
        return done

    async def acquire_per_query(deadline: float) -> int:  # a worker that acquires for every query
        done = 0
        while time.monotonic() < deadline:
            await one()
            done += 1
        return done

    async def held(deadline: float) -> int:  # a worker that holds one connection for the window
        done = 0
        async with pool.acquire() as connection:
            query = getattr(connection, method)
            while time.monotonic() < deadline:
                await query(sql, product_id)
                done += 1
        return done

    async def run(seconds: float) -> int:
        deadline = time.monotonic() + seconds
        if spec["pattern"] == "gather":
            return await gather(deadline)
        worker = acquire_per_query if spec["pattern"] == "acquire" else held
        return sum(await asyncio.gather(*(worker(deadline) for _ in range(workers))))

    return run


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
        runs = {method: window(pool, spec, method) for method in spec["methods"]}
        loop = "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"
        _answer({"pids": pids, "rows": rows, "loop": loop})
        while line := await asyncio.to_thread(sys.stdin.readline):
            request = json.loads(line)
            cpu, start = time.process_time(), time.monotonic()
            queries = await runs[request["method"]](request["seconds"])
            end = time.monotonic()
            _answer({"queries": queries, "start": start, "end": end, "cpu": time.process_time() - cpu})
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
