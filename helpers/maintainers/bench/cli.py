"""`python -m helpers bench [--quick | --smoke] [--json PATH] [--plots DIR] [--from PATH]`: the bench.

Progress goes to stderr, the tables and goals to stdout; the JSON holds every measurement as a
row, with the versions they were measured with; the plots are PNG files.  `--from` reports a
recorded run again, without a server.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ...databases import database_name
from ...errors import ConfigError
from . import record, report
from .run import run_bench
from .sizes import FULL, QUICK, SMOKE

DEFAULT_DATABASE = "bench"


def add_parser(groups: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = groups.add_parser(
        "bench", help="the full performance lab: asyncpg beside pgbench, psql and psycopg",
        description="Seven workloads on a fresh clone of the seeded e-shop, each measured in interleaved rounds "
                    "of equal windows: concurrent queries beside pgbench, a pool-size sweep, three ways to seed, "
                    "fetch vs cursor memory, psycopg, an index, and the pool's costs removed one at a time. "
                    "Goals are reported (met or not), never asserted.")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer pool sizes and rounds, smaller loads")
    size.add_argument("--smoke", action="store_true",
                      help="the smallest run that fills every figure: proves the bench works, measures nothing")
    size.add_argument("--from", dest="recorded", type=Path, metavar="PATH",
                      help="report a run recorded with --json again (tables, goals, --plots), without a server")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every measurement, with versions, here")
    parser.add_argument("--plots", type=Path, metavar="DIR", help="write the charts as PNG files into this directory")
    parser.add_argument("--database", default=DEFAULT_DATABASE, metavar="NAME",
                        help="the bench's database (re-cloned on every run; NAME_seed0..2 are used for seeding); "
                             f"default {DEFAULT_DATABASE!r}. Give another to run two benches at once")
    parser.set_defaults(func=run)


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.recorded is not None:
        result = record.read_json(args.recorded)
    else:
        name = args.database
        database_name(f"{name}_seed0")  # raises ConfigError for a name that cannot be used
        sizes = SMOKE if args.smoke else QUICK if args.quick else FULL
        result = asyncio.run(run_bench(sizes, name, _progress))
    if args.plots is not None:
        result.plots = report.save_plots(result, args.plots)
        _progress(f"plots written: {len(result.plots)} PNG files in {args.plots}")
    if args.json is not None:
        if args.recorded is not None and args.json.resolve() == args.recorded.resolve():
            raise ConfigError("--json would overwrite the run given with --from.", "give --json another path.")
        record.write_json(result, args.json)
        _progress(f"JSON written: {args.json}")
    print(report.render(result))
    return 0
