"""`python -m helpers bench [--quick] [--json PATH] [--plots DIR]`: run the performance lab.

Progress goes to stderr; the table goes to stdout; the JSON holds every figure and the
versions they were measured with; the plots are PNG files.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ...databases import database_name
from ...errors import ConfigError
from . import plots, report
from .lab import run_lab
from .sizes import FULL, QUICK, SMOKE

DEFAULT_DATABASE = "bench"


def add_parser(groups: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = groups.add_parser(
        "bench", help="the performance lab: asyncpg beside pgbench, psql and psycopg",
        description="Seven workloads on a fresh clone of the seeded e-shop: concurrent queries against pgbench, "
                    "a pool-size sweep, three ways to seed, fetch vs cursor memory, psycopg, an index, and the "
                    "pool's costs removed one at a time (reset, acquire, event loop, one process). "
                    "Goals are reported (met or not), never asserted.")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="shrink every workload so the whole run takes about a minute (default: the book's sizes)")
    size.add_argument("--smoke", action="store_true",
                      help="the smallest run that fills every figure: proves the lab works, measures nothing useful")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure, with versions, as JSON here")
    parser.add_argument("--plots", type=Path, metavar="DIR", help="write the charts as PNG files into this directory")
    parser.add_argument("--database", default=DEFAULT_DATABASE, metavar="NAME",
                        help="the lab's database (re-cloned on every run; NAME_seed is used for seeding); "
                             f"default {DEFAULT_DATABASE!r}. Give another to run two labs at once")
    parser.set_defaults(func=run)


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    name = args.database
    database_name(name)  # raises ConfigError for a name that cannot be used
    if len(name) > 27:
        raise ConfigError(f"The database name {name!r} is too long for the lab (it also uses {name}_seed).",
                          "use at most 27 characters, e.g. 'bench' or 'bench_ci'.")
    sizes = SMOKE if args.smoke else QUICK if args.quick else FULL
    results = asyncio.run(run_lab(sizes, name, _progress))
    figures = report.derived(results)
    written: dict[str, str] = {}
    if args.plots is not None:
        written = plots.save(results, figures, args.plots)
        _progress(f"plots written: {len(written)} PNG files")
    if args.json is not None:
        report.write_json(report.document(results, figures, written), args.json)
        _progress("JSON written")
    print(report.render(report.tables(results, figures), report.header(results)))
    return 0
