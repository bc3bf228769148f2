"""One measured side: wall time, and the CPU time the client and the server spent on it.

Client CPU is this Python process's CPU time (`time.process_time`), or a finished child's
(`getrusage(RUSAGE_CHILDREN)`) for pgbench.  Server CPU is the CPU time of the backends that
served the side's connections, read from the operating system; it can only be read when the
server runs on this machine (the embedded server), and is None otherwise.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psutil

from ... import config


@dataclass
class Measurement:
    queries: int
    seconds: float
    client_cpu: float | None = None
    server_cpu: float | None = None

    @property
    def qps(self) -> float:
        return self.queries / self.seconds


@dataclass
class Meter:
    """Filled in by `measured()` when its block ends."""

    seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float | None = None


def server_is_local() -> bool:
    """Backend pids mean something only for the embedded server, which runs on this machine."""
    return config.database_url() is None


def backends_cpu(pids: Sequence[int]) -> float | None:
    """CPU seconds of these server backends so far (None when they cannot be read)."""
    if not pids or not server_is_local():
        return None
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.name() != "postgres":
                return None
            total += _cpu_seconds(proc)
        except psutil.Error:
            return None
    return total


def _cpu_seconds(proc: psutil.Process) -> float:
    """One process's CPU time.  Linux's schedstat counts nanoseconds; psutil's user + system time
    counts clock ticks of 10 ms, too coarse for a step of the smoke size, which can read 0."""
    try:
        with open(f"/proc/{proc.pid}/schedstat", encoding="ascii") as schedstat:
            return int(schedstat.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        times = proc.cpu_times()
        return times.user + times.system


def children_cpu() -> float:
    """CPU seconds of the finished child processes (pgbench, psql) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def measured(server_pids: Sequence[int] = ()) -> Iterator[Meter]:
    """`with measured(pids) as m: ...` then m.seconds, m.client_cpu, m.server_cpu."""
    meter = Meter()
    server_before = backends_cpu(server_pids)
    cpu_before = time.process_time()
    start = time.perf_counter()
    try:
        yield meter
    finally:
        meter.seconds = time.perf_counter() - start
        meter.client_cpu = time.process_time() - cpu_before
        server_after = backends_cpu(server_pids)
        if server_before is not None and server_after is not None:
            meter.server_cpu = server_after - server_before


@dataclass
class Summary:
    """One side over all its rounds: throughput (total queries / total seconds) and CPU per query.

    A CPU figure that was not measured (the server's for pgbench, or any on a remote server) is None.
    """

    queries: int
    seconds: float
    qps: float
    round_qps: list[float]
    round_spread: float
    client_cpu_ms_per_query: float | None = None
    client_busy: float | None = None
    server_cpu_ms_per_query: float | None = None
    server_busy: float | None = None


def summarize(rounds: Sequence[Measurement]) -> Summary:
    """Throughput over all rounds, CPU per query, and each round's rate."""
    queries = sum(m.queries for m in rounds)
    seconds = sum(m.seconds for m in rounds)
    rates = [m.qps for m in rounds]
    client = _total(m.client_cpu for m in rounds)
    server = _total(m.server_cpu for m in rounds)
    return Summary(
        queries=queries, seconds=seconds, qps=queries / seconds, round_qps=rates, round_spread=max(rates) / min(rates),
        client_cpu_ms_per_query=None if client is None else 1000 * client / queries,
        client_busy=None if client is None else client / seconds,
        server_cpu_ms_per_query=None if server is None else 1000 * server / queries,
        server_busy=None if server is None else server / seconds,
    )


def _total(values: Iterable[float | None]) -> float | None:
    items = list(values)
    known = [v for v in items if v is not None]
    if not items or len(known) < len(items):
        return None
    return float(sum(known))
