"""Workload 7: how much of the gap to pgbench a learner can win back, one cost removed at a time.

Each step is a way of running the same concurrent product queries on six connections:

1. the book's pattern: `gather` of one coroutine per query, each acquiring a connection from
   the pool, and the pool's default reset (one more round trip) on every release;
2. the same with the pool's `reset` callback made a no-op (asyncpg >= 0.30), which is only
   safe when no code changes session state (see the notebook's demonstration);
3. one connection held by each of six worker tasks, each running its share of the queries:
   no acquire and no release per query at all;
4. step 3 on uvloop's event loop instead of asyncio's (skipped when uvloop is not installed);
5. two client processes, each with its own loop and a pool of three, running step 4's
   pattern (on asyncio's loop when uvloop is missing): two Python threads instead of one.

Every step runs in child processes of its own (pool_child.py), all started together before
anything is timed and kept for both methods and all rounds, so that no step pays for starting
Python.  The steps and pgbench (six clients) take turns round by round, in reverse order every
other round; pgbench runs as long as the steps' mean time in that round (at the smoke size: as
many queries as a step).  Client CPU is the children's CPU time; server CPU that of the
backends serving their pools.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import statistics
import sys
from asyncio.subprocess import PIPE, Process
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ...errors import CourseError
from .measure import Measurement, backends_cpu, summarize
from .pgbench import Pgbench
from .queries import METHODS, asyncpg_sql
from .results import CostsMethod, PoolCosts, Step, StepResult
from .sizes import Sizes
from .workloads import split

CHILD = Path(__file__).with_name("pool_child.py")
NO_UVLOOP = "uvloop not installed (pip install uvloop): skipped"


class Closable(Protocol):
    async def close(self) -> None: ...


Opened = TypeVar("Opened", bound=Closable)


def steps(connections: int, uvloop: bool) -> list[Step]:
    """The five steps; the last runs two processes of half the connections each."""
    fast_loop = "uvloop" if uvloop else "asyncio"
    half = connections // 2
    return [
        Step("book", "1. the book: acquire per query, default reset", "1. the book",
             1, "acquire", "default", "asyncio"),
        Step("no_reset", "2. acquire per query, reset skipped", "2. no reset",
             1, "acquire", "skipped", "asyncio"),
        Step("held", f"3. one connection held per worker ({connections} tasks)", "3. held",
             1, "held", "skipped", "asyncio"),
        Step("uvloop", "4. step 3 on uvloop", "4. uvloop",
             1, "held", "skipped", "uvloop"),
        Step("two_processes", f"5. two processes, {half} held connections each ({fast_loop})", "5. 2 processes",
             2, "held", "skipped", fast_loop),
    ]


def uvloop_version() -> str | None:
    if importlib.util.find_spec("uvloop") is None:
        return None
    from importlib.metadata import version

    return version("uvloop")


class Child:
    """One pool_child.py process: a pool of `connections`, ready to run queries on request."""

    def __init__(self, process: Process, pids: list[int], rows: dict[str, int]) -> None:
        self.process, self.pids, self.rows = process, pids, rows

    @classmethod
    async def start(cls, spec: dict[str, Any], loop: str) -> Child:
        process = await asyncio.create_subprocess_exec(sys.executable, str(CHILD), loop,
                                                       stdin=PIPE, stdout=PIPE, stderr=PIPE)
        child = cls(process, [], {})
        ready = await child.ask(spec)
        child.pids, child.rows = ready["pids"], ready["rows"]
        if ready["loop"] != loop:
            raise CourseError(f"The pool-costs client ran on {ready['loop']} instead of {loop}.",
                              "check the installed uvloop (`pip show uvloop`).")
        return child

    async def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        await self.process.stdin.drain()
        line = await self.process.stdout.readline()
        if not line:
            await self.close()
            raise CourseError(f"A pool-costs client process failed: {await self._last_error()}",
                              "check that the server is up (`python -m helpers db status`) and try again.")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def _last_error(self) -> str:
        assert self.process.stderr is not None
        text = (await self.process.stderr.read()).decode(errors="replace").strip()
        return (text.splitlines() or ["(no output)"])[-1]

    async def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        await self.process.wait()


class StepClients:
    """The child processes of one step, run together: one rate, their CPU, their backends' CPU."""

    def __init__(self, step: Step, children: list[Child]) -> None:
        self.step, self.children = step, children
        self.pids = [pid for child in children for pid in child.pids]

    @classmethod
    async def open(cls, step: Step, dsn: str, connections: int, product_id: int) -> StepClients:
        spec = {"dsn": dsn, "sql": asyncpg_sql(), "product_id": product_id, "methods": list(METHODS),
                "connections": connections // step.processes, "pattern": step.pattern, "reset": step.reset}
        return cls(step, await _together([Child.start(spec, step.loop) for _ in range(step.processes)]))

    async def run(self, method: str, queries: int) -> Measurement:
        shares = split(queries, len(self.children))
        server_before = backends_cpu(self.pids)
        answers = await asyncio.gather(*(child.ask({"method": method, "queries": n})
                                         for child, n in zip(self.children, shares, strict=True)))
        server_after = backends_cpu(self.pids)
        seconds = max(a["end"] for a in answers) - min(a["start"] for a in answers)
        server = None if server_before is None or server_after is None else server_after - server_before
        return Measurement(queries, seconds, sum(a["cpu"] for a in answers), server)

    async def close(self) -> None:
        for child in self.children:
            await child.close()


async def _together(starts: list[Coroutine[Any, Any, Opened]]) -> list[Opened]:
    """Start children (or steps) at once, not one Python start-up after another; if one fails,
    close those that started and raise its error."""
    results = await asyncio.gather(*starts, return_exceptions=True)
    opened = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        for item in opened:
            await item.close()
        raise failed[0]
    return opened


async def pool_costs(dsn: str, sizes: Sizes, *, progress: Callable[[str], None]) -> PoolCosts:
    connections = sizes.pool_size
    plan = steps(connections, uvloop_version() is not None)
    skipped = {s.key: NO_UVLOOP for s in plan if s.loop == "uvloop" and uvloop_version() is None}
    queries = {"fetchrow": sizes.costs_fetchrow_queries, "fetch": sizes.costs_fetch_queries}
    clients: list[StepClients] = []
    try:
        clients = await _together([StepClients.open(step, dsn, connections, sizes.product_id)
                                   for step in plan if step.key not in skipped])
        with Pgbench(dsn, sizes.product_id, same_queries=sizes.pgbench_same_queries) as pgbench:
            methods = {method: await _method(method, plan, skipped, clients, queries[method], sizes, pgbench,
                                             progress)
                       for method in METHODS}
    finally:
        for c in clients:
            await c.close()
    return PoolCosts(connections=connections, product_id=sizes.product_id, rounds=sizes.costs_rounds,
                     queries_per_step=queries, methods=methods)


async def _method(method: str, plan: list[Step], skipped: dict[str, str], clients: list[StepClients], queries: int,
                  sizes: Sizes, pgbench: Pgbench, progress: Callable[[str], None]) -> CostsMethod:
    measured: dict[str, list[Measurement]] = {c.step.key: [] for c in clients}
    ceiling: list[Measurement] = []
    pgbench_seconds: list[int] = []
    for index, share in enumerate(split(queries, sizes.costs_rounds)):
        turn: list[StepClients | None] = [*clients, None]  # None: pgbench's turn
        durations: list[float] = []
        for side in (turn if index % 2 == 0 else turn[::-1]):
            if side is None:
                previous = durations or [m[-1].seconds for m in measured.values() if m]
                ceiling.append(pgbench.beside(method, sizes.pool_size, queries=share,
                                              seconds=statistics.mean(previous) if previous else 1.0,
                                              spans=pgbench_seconds))
            else:
                m = await side.run(method, share)
                measured[side.step.key].append(m)
                durations.append(m.seconds)
        progress(f"pool costs, {method} round {index + 1}/{sizes.costs_rounds} done")
    pgbench_summary = summarize(ceiling)
    results = []
    for step in plan:
        if step.key in skipped:
            results.append(StepResult(step, None, None, skipped[step.key]))
            continue
        summary = summarize(measured[step.key])
        results.append(StepResult(step, summary, summary.qps / pgbench_summary.qps))
    return CostsMethod(steps=results, pgbench=pgbench_summary, pgbench_seconds=pgbench_seconds)
