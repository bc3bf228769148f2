"""How big each workload is: the book's sizes by default, a one-minute version with --quick,
and --smoke, the smallest run that fills every figure (for the tests)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    mode: str
    #: Workload 1 (and 5, 6): queries per side, split over `rounds` interleaved rounds.
    fetchrow_queries: int
    fetch_queries: int
    rounds: int
    #: Workload 6 (the index): its queries are fast, so fewer rounds (and, quick, more queries for fetch).
    index_rounds: int
    index_fetch_queries: int
    #: Workload 2: pool sizes, and concurrent queries per pool size.
    pool_sizes: tuple[int, ...]
    sweep_fetchrow_queries: int
    sweep_fetch_queries: int
    #: Workload 3: the dataset, and how many times each loader runs.
    seed_brands: int
    seed_products: int
    seed_skus: int
    seed_rounds: int
    #: Workload 4: rows streamed, cursor prefetch sizes, rounds.
    memory_rows: tuple[int, ...]
    prefetch: tuple[int, ...]
    memory_rounds: int
    #: Workload 7 (pool costs): queries per step and per method, split over `costs_rounds` rounds.
    costs_fetchrow_queries: int
    costs_fetch_queries: int
    costs_rounds: int
    #: The product the chapter queries.
    product_id: int = 100
    #: The chapter's pool (and pgbench's client count beside it).
    pool_size: int = 6
    #: How long pgbench runs beside a side: False, as long as the side took (-T in whole seconds, at
    #: least one), so both rates are read over a like span; True, as many queries as the side ran
    #: (-t), for the smoke size, where fourteen one-second pgbench runs would be most of its time.
    pgbench_same_queries: bool = False


FULL = Sizes(
    mode="full",
    fetchrow_queries=10_000,
    fetch_queries=10_000,
    rounds=4,
    index_rounds=2,
    index_fetch_queries=10_000,
    pool_sizes=(1, 2, 4, 6, 8, 12, 16),
    sweep_fetchrow_queries=10_000,
    sweep_fetch_queries=500,
    seed_brands=100,
    seed_products=1_000,
    seed_skus=100_000,
    seed_rounds=3,
    memory_rows=(10_000, 100_000, 1_000_000),
    prefetch=(50, 1_000),
    memory_rounds=2,
    costs_fetchrow_queries=20_000,
    costs_fetch_queries=3_000,
    costs_rounds=4,
)

QUICK = Sizes(
    mode="quick",
    fetchrow_queries=1_500,
    fetch_queries=300,
    rounds=2,
    index_rounds=1,
    index_fetch_queries=1_500,
    pool_sizes=(1, 2, 4, 6, 8, 12, 16),
    sweep_fetchrow_queries=1_000,
    sweep_fetch_queries=150,
    seed_brands=100,
    seed_products=1_000,
    seed_skus=20_000,
    seed_rounds=2,
    memory_rows=(1_000, 10_000, 100_000),
    prefetch=(50, 1_000),
    memory_rounds=1,
    costs_fetchrow_queries=3_000,
    costs_fetch_queries=300,
    costs_rounds=2,
)

#: The smallest run that still fills every figure and plot: for the test suite, whose job is to
#: prove the lab works, not to measure (notebook 10 runs the quick lab under nbval).  Each count is
#: a few queries per connection of the pool of 6; workload 7 keeps enough queries per step for its
#: backends' CPU time (read in 10 ms ticks) to register, and the largest memory size enough rows
#: for fetch's extra memory to show (the cursors' is compared with it).
SMOKE = Sizes(
    mode="smoke",
    fetchrow_queries=120,
    fetch_queries=12,
    rounds=1,
    index_rounds=1,
    index_fetch_queries=120,
    pool_sizes=(1, 6),
    sweep_fetchrow_queries=60,
    sweep_fetch_queries=12,
    seed_brands=20,
    seed_products=100,
    seed_skus=1_000,
    seed_rounds=1,
    memory_rows=(100, 10_000),
    prefetch=(50, 1_000),
    memory_rounds=1,
    costs_fetchrow_queries=600,
    costs_fetch_queries=30,
    costs_rounds=1,
    pgbench_same_queries=True,
)
