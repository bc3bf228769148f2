"""How big each workload is: the book's sizes (full), a shorter run (--quick), and --smoke, the
smallest run that fills every figure (for the tests).

Every throughput figure is measured in windows of `window` seconds, the same length on every
side, in `rounds` interleaved rounds (see `helpers.lab.rounds`); the seeding and the memory
workloads do a fixed amount of work per round instead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    mode: str
    #: Seconds per window, and rounds per side, of every throughput workload (1, 2, 5, 6, 7).
    window: float
    rounds: int
    #: Workload 2: the pool sizes (and pgbench client counts) compared.
    pool_sizes: tuple[int, ...]
    #: Workload 3: the dataset loaded each round, and how many rounds.
    seed_brands: int
    seed_products: int
    seed_skus: int
    seed_rounds: int
    #: Workload 4: rows read, the cursors' prefetch sizes, and rounds.
    memory_rows: tuple[int, ...]
    prefetch: tuple[int, ...]
    memory_rounds: int
    #: The product the chapter queries, and the chapter's pool (pgbench's client count beside it).
    product_id: int = 100
    pool_size: int = 6


FULL = Sizes(mode="full", window=2.0, rounds=4, pool_sizes=(1, 2, 4, 6, 8, 16),
             seed_brands=100, seed_products=1_000, seed_skus=100_000, seed_rounds=3,
             memory_rows=(10_000, 100_000, 1_000_000), prefetch=(50, 1_000), memory_rounds=3)

QUICK = Sizes(mode="quick", window=2.0, rounds=3, pool_sizes=(1, 2, 6, 16),
              seed_brands=100, seed_products=1_000, seed_skus=20_000, seed_rounds=3,
              memory_rows=(10_000, 50_000, 100_000), prefetch=(50, 1_000), memory_rounds=3)

#: Proves that every workload runs and fills its rows; measures nothing.  Its windows are shorter
#: than a second, which pgbench's -T (whole seconds) cannot express: there pgbench runs a fixed
#: number of transactions per client instead (`pgbench.SMOKE_TRANSACTIONS`).
SMOKE = Sizes(mode="smoke", window=0.1, rounds=1, pool_sizes=(1, 6),
              seed_brands=20, seed_products=100, seed_skus=1_000, seed_rounds=1,
              memory_rows=(100, 10_000), prefetch=(50, 1_000), memory_rounds=1)
