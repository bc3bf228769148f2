"""What the lab measured, as typed records: one dataclass per workload, and the run around them.

The workloads return these; derive.py and report.py read them; the JSON is `asdict` of them
(plus the derived figures), and `load()` turns a recorded JSON back into them, so the report
can be rebuilt and tested from a recorded run without a server.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

from .measure import Summary
from .sizes import Sizes

T = TypeVar("T")


@dataclass
class Environment:
    python: str
    asyncpg: str
    postgresql: str
    psycopg: str | None
    pgbench: str
    cpu_count: int | None
    platform: str
    server: str
    uvloop: str | None = None
    load_average: list[float] | None = None


@dataclass
class MethodSides:
    """Workload 1 (and 5, 6) for one method: each side's summary (None when skipped) and the ratios."""

    sides: dict[str, Summary | None]
    pgbench_seconds: dict[str, list[int]]
    ratios: dict[str, float | None]

    def qps(self, side: str) -> float | None:
        summary = self.sides[side]
        return None if summary is None else summary.qps


@dataclass
class ProductQueries:
    pool_size: int
    product_id: int
    rounds: int
    queries_per_side: dict[str, int]
    rows_per_query: dict[str, dict[str, int] | None]
    methods: dict[str, MethodSides]
    index_sql: str | None = None
    create_index_seconds: float | None = None


@dataclass
class SweepMethod:
    queries_per_size: int
    asyncpg_qps: list[float]
    pgbench_qps: list[float]
    asyncpg_vs_pgbench: list[float | None]
    asyncpg_client_busy: list[float | None]
    best_pool_size: int


@dataclass
class PoolSweep:
    pool_sizes: list[int]
    methods: dict[str, SweepMethod]


@dataclass
class Seeding:
    rows: int
    tables: dict[str, int]
    rounds: int
    statistic: str
    timed: str
    round_seconds: dict[str, list[float]]
    seconds: dict[str, float]
    rows_per_second: dict[str, float]
    time_vs_psql: dict[str, float]
    same_data: bool


@dataclass
class StreamingMemory:
    measure: str
    process: str
    query: str
    rows: list[int]
    rounds: int
    statistic: str
    extra_mib: dict[str, list[float]]
    seconds: dict[str, list[float]]
    rows_per_second: dict[str, list[float]]
    largest: int
    cursor_vs_fetch_memory_at_largest: dict[str, float | None]


@dataclass
class Step:
    """One step of workload 7: how the client runs the queries (see pool_costs.py)."""

    key: str
    label: str
    short: str  # for a chart's axis
    processes: int
    pattern: str  # "acquire" (acquire per query, gathered) or "held" (one connection per worker task)
    reset: str  # "default" (Connection.reset) or "skipped" (a no-op reset callback)
    loop: str  # "asyncio" or "uvloop"


@dataclass
class StepResult:
    step: Step
    summary: Summary | None
    vs_pgbench: float | None
    skipped: str | None = None


@dataclass
class CostsMethod:
    steps: list[StepResult]
    pgbench: Summary
    pgbench_seconds: list[int]

    def result(self, key: str) -> StepResult:
        return next(r for r in self.steps if r.step.key == key)

    def best(self) -> StepResult:
        """The measured step closest to pgbench (the first is always measured)."""
        return max((r for r in self.steps if r.vs_pgbench is not None), key=lambda r: r.vs_pgbench or 0.0)


@dataclass
class PoolCosts:
    connections: int
    product_id: int
    rounds: int
    queries_per_step: dict[str, int]
    methods: dict[str, CostsMethod]


@dataclass
class Workloads:
    concurrent_queries: ProductQueries
    pool_sweep: PoolSweep
    seeding: Seeding
    streaming_memory: StreamingMemory
    index: ProductQueries
    pool_costs: PoolCosts


@dataclass
class LabResults:
    mode: str
    environment: Environment
    sizes: Sizes
    workloads: Workloads
    workload_seconds: dict[str, float] = field(default_factory=dict)
    elapsed_seconds: float = 0.0


def to_dict(value: Any) -> Any:
    """A dataclass (or a structure of them) as plain JSON-ready values."""
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) and not isinstance(value, type) else value


def load(cls: type[T], data: Any) -> T:
    """Build `cls` (a dataclass) from `to_dict`'s output, recursively, following the type hints."""
    return typing.cast(T, _convert(cls, data))


def _convert(kind: Any, data: Any) -> Any:
    if data is None:
        return None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (Union, types.UnionType):
        return _convert(next(a for a in args if a is not type(None)), data)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        hints = typing.get_type_hints(kind)
        names = {f.name for f in dataclasses.fields(kind)}
        return kind(**{k: _convert(hints[k], v) for k, v in data.items() if k in names})
    if origin is list:
        return [_convert(args[0], v) for v in data]
    if origin is tuple:
        return tuple(_convert(args[0], v) for v in data)
    if origin is dict:
        return {k: _convert(args[1], v) for k, v in data.items()}
    return data
