"""`python -m helpers db start|stop|status|url|reset|template|psql`: the course's database from a shell.

A `CourseError` is printed as its one paragraph and the command exits 1; nothing else of
ours prints a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import config, databases
from .bench.cli import add_parser as add_bench_parser
from .connection import connect, describe, embedded_server, server_dsn
from .errors import CourseError
from .server import binary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers", description=__doc__.splitlines()[0])
    groups = parser.add_subparsers(dest="group", required=True)
    db = groups.add_parser("db", help="the course's PostgreSQL server").add_subparsers(dest="action", required=True)
    db.add_parser("start", help="start the embedded server (unless DATABASE_URL is set) and build the template")
    db.add_parser("stop", help="stop the embedded server")
    db.add_parser("status", help="check the configured server; exit 1 when it cannot be reached")
    db.add_parser("url", help="print a DSN for the server's maintenance database")
    db.add_parser("reset", help="drop this prefix's databases and rebuild the template")
    db.add_parser("template", help="build the seeded template unless it is up to date")
    psql = db.add_parser("psql", help="open psql on a course database (default: the maintenance database)")
    psql.add_argument("notebook", nargs="?", help="a notebook's database, e.g. 04_pools")
    nb = groups.add_parser("notebooks", help="the course's notebooks").add_subparsers(dest="action", required=True)
    execute = nb.add_parser("execute", help="re-execute notebooks in place (their stored outputs are nbval's reference)")
    execute.add_argument("paths", nargs="*", type=Path, help="notebooks to run (default: all, in order)")
    add_bench_parser(groups, COMMANDS)
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.group, getattr(args, "action", "")](args)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def start(_: argparse.Namespace) -> int:
    began = time.perf_counter()
    dsn = server_dsn()
    started = time.perf_counter()
    print(f"server ready: {describe(dsn)} ({started - began:.1f} s)")
    name = asyncio.run(databases.ensure_template(progress=True))
    print(f"template ready: {name} ({time.perf_counter() - started:.1f} s)")
    return 0


def stop(_: argparse.Namespace) -> int:
    if config.database_url() is not None:
        print("DATABASE_URL is set: that server is not ours to stop.")
        return 0
    print("embedded server stopped" if embedded_server().stop() else "embedded server was not running")
    return 0


def status(_: argparse.Namespace) -> int:
    kind = "DATABASE_URL" if config.database_url() else f"embedded server in {config.pgdata_dir()}"
    if config.database_url() is None and embedded_server().running() is None:
        print(f"server:    {kind}: not running (it starts on first use, or with `python -m helpers db start`)")
        return 1
    dsn = server_dsn()
    print(f"server:    {kind}")
    print(f"dsn:       {describe(dsn)}")
    version, names = asyncio.run(_version_and_databases(dsn))
    print(f"version:   {version}")
    print(f"prefix:    {config.db_prefix()}")
    print(f"databases: {', '.join(names) or '(none yet)'}")
    return 0


async def _version_and_databases(dsn: str) -> tuple[str, list[str]]:
    conn = await connect(dsn)
    try:
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return version, await databases.course_databases()


def url(_: argparse.Namespace) -> int:
    print(server_dsn())
    return 0


def reset(_: argparse.Namespace) -> int:
    dropped = asyncio.run(databases.drop_course_databases())
    print(f"dropped: {', '.join(dropped) or '(nothing)'}")
    name = asyncio.run(databases.ensure_template(progress=True))
    print(f"template rebuilt: {name}")
    return 0


def template(_: argparse.Namespace) -> int:
    print(f"template ready: {asyncio.run(databases.ensure_template(progress=True))}")
    return 0


def psql(args: argparse.Namespace) -> int:
    database = databases.database_name(args.notebook) if args.notebook else "postgres"
    dsn = server_dsn(database)
    os.execv(binary("psql"), ["psql", dsn])


def execute_notebooks(args: argparse.Namespace) -> int:
    from .notebooks import course_notebooks, execute_in_place

    for path in args.paths or course_notebooks():
        print(f"{path.name}: {execute_in_place(path.resolve()):.1f} s", flush=True)
    return 0


COMMANDS: dict[tuple[str, str], Callable[[argparse.Namespace], int]] = {
    ("db", "start"): start,
    ("db", "stop"): stop,
    ("db", "status"): status,
    ("db", "url"): url,
    ("db", "reset"): reset,
    ("db", "template"): template,
    ("db", "psql"): psql,
    ("notebooks", "execute"): execute_notebooks,
}
