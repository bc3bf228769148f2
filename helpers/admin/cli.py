"""`course` (or `python -m helpers`): the course's database, notebooks, benchmark and self-check from a shell.

    course db start|stop|status|url|reset|template
    course db psql 04_connection_pools -c 'SELECT count(*) FROM sku'
    course notebooks execute notebooks/01_connect.ipynb
    course bench --quick
    course doctor
    course class setup --learner Carol.Smith --learner team --out class.json
    course class prefix Carol.Smith
    course assignments --out build/nbgrader
    course links --repo https://github.com/OWNER/REPO --hub https://hub.example.edu

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

from .. import databases
from ..connection import LEARNER_ROLE, admin
from ..dsn import for_child, mask
from ..errors import CourseError
from ..server import binary
from ..target import Target, resolve

Command = Callable[[argparse.Namespace], int]

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:11]))
    groups = parser.add_subparsers(dest="group", required=True,
                                   metavar="{db,class,notebooks,bench,site,assignments,links,doctor}")
    _add_db(groups)
    _add_class(groups)
    nb = groups.add_parser("notebooks", help="the course's notebooks").add_subparsers(dest="action", required=True)
    execute = nb.add_parser("execute", help="re-execute notebooks in place (their stored outputs are nbval's reference)")
    execute.add_argument("paths", nargs="*", type=Path, help="notebooks to run (default: all, in order)")
    execute.set_defaults(func=execute_notebooks)
    _add_bench(groups)
    site = groups.add_parser("site", help="the executed notebooks as static HTML or reveal.js slides in build/ (offline)")
    site.add_argument("what", choices=["html", "slides"])
    site.add_argument("--out", type=Path, help="output folder (default: build/html or build/slides)")
    site.add_argument("notebooks", nargs="*", type=Path, help="notebooks to convert (default: all, in order)")
    site.set_defaults(func=build_site)
    homework = groups.add_parser("assignments", help="write the exercises as nbgrader source assignments (homework)")
    homework.add_argument("--out", type=Path, default=Path("build/nbgrader"),
                          help="the nbgrader course folder to write (default: build/nbgrader)")
    homework.add_argument("notebooks", nargs="*", type=Path, help="notebooks to include (default: all with exercises)")
    homework.set_defaults(func=write_assignments)
    link = groups.add_parser("links", help="the Binder link and badge, and a JupyterHub's nbgitpuller link, for this course")
    link.add_argument("--repo", help="the repository's public URL (default: the clone's origin remote)")
    link.add_argument("--branch", default="main", help="the branch to open (default: main)")
    link.add_argument("--notebook", default="01_connect.ipynb", help="the notebook to open (default: 01_connect.ipynb)")
    link.add_argument("--hub", help="a JupyterHub's URL, e.g. https://hub.example.edu, for the nbgitpuller link")
    link.set_defaults(func=print_links)
    doctor = groups.add_parser("doctor", help="check Python, packages, kernel, server and template; say what to fix")
    doctor.set_defaults(func=run_doctor)
    return parser


def _add_db(groups: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    db = groups.add_parser("db", help="the course's PostgreSQL server").add_subparsers(dest="action", required=True)
    for name, func, text in [
        ("start", start, "start the embedded server (unless DATABASE_URL is set) and build the template"),
        ("stop", stop, "stop the embedded server"),
        ("status", status, "which server and prefix, and why; exit 1 when the server cannot be reached"),
        ("url", url, "print a DSN for the server's maintenance database"),
        ("reset", reset, "drop this prefix's databases (no one else's) and rebuild the template"),
        ("template", template, "build the seeded template unless it is up to date, and verify it"),
    ]:
        db.add_parser(name, help=text).set_defaults(func=func)
    db.choices["url"].add_argument("--show-password", action="store_true",
                                   help="print the password too (by default it is masked like everywhere else)")
    psql = db.add_parser("psql", help="open psql on a notebook's database; further arguments go to psql",
                         description="e.g. `db psql 04_connection_pools -c 'SELECT count(*) FROM sku'`; "
                                     "`db psql postgres …` for the maintenance database")
    psql.add_argument("notebook", nargs="?", help="a notebook's database, e.g. 04_connection_pools (default: postgres)")
    psql.add_argument("psql_args", nargs=argparse.REMAINDER, help="passed to psql as they are, e.g. -c 'select 1'")
    psql.set_defaults(func=run_psql)


def _add_class(groups: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    klass = groups.add_parser("class", help="a class server's roles, and the learners' prefixes (for instructors)")
    actions = klass.add_subparsers(dest="action", required=True)
    setup = actions.add_parser(
        "setup", help="as an admin role (DATABASE_URL): the learners' roles, notebook 01's demo role, the class file",
        description="Connected as DATABASE_URL's admin role, make a LOGIN CREATEDB role per learner (or one shared "
                    "role), the demo role course_learner with the password in COURSE_DEMO_PASSWORD (or asked for), "
                    "and write the class file the hub's configuration reads. Rerunning it resets the passwords.")
    setup.add_argument("--learner", action="append", required=True, metavar="NAME",
                       help="a learner's login name (repeat); JupyterHub lowercases it, and so does this")
    setup.add_argument("--shared-role", metavar="ROLE", help="one role for the whole class instead of one per learner")
    setup.add_argument("--out", type=Path, required=True, help="the class file to write (JSON, mode 0600)")
    setup.add_argument("--templates", action="store_true",
                       help="also build every learner's template now, logged in as that learner's role")
    setup.set_defaults(func=class_setup)
    prefix = actions.add_parser("prefix", help="the database prefix each login name gets on JupyterHub")
    prefix.add_argument("names", nargs="+", metavar="NAME")
    prefix.set_defaults(func=class_prefix)


def _add_bench(groups: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from ..maintainers.bench.cli import add_parser

    add_parser(groups)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Command | None = getattr(args, "func", None)
    if func is None:
        print(f"error: no command for {args.group}", file=sys.stderr)
        return 2
    try:
        return func(args)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def write_assignments(args: argparse.Namespace) -> int:
    from .assignments import write_course

    written = write_course(args.out, args.notebooks or None)
    print(f"{len(written)} source assignments in {args.out / 'source'}; next, in {args.out}: "
          "nbgrader generate_assignment <name> (see docs/instructor-guide.md, Homework)")
    return 0


def print_links(args: argparse.Namespace) -> int:
    from .links import links

    made = links(args.repo, args.branch, args.notebook, args.hub)
    print(f"Binder:       {made.binder}")
    print(f"README badge: {made.badge}")
    if made.nbgitpuller:
        print(f"nbgitpuller:  {made.nbgitpuller}")
    return 0


def build_site(args: argparse.Namespace) -> int:
    from ..maintainers.site import build

    return build(args.what, args.out, args.notebooks)


# -- db ---------------------------------------------------------------------------------
def start(_: argparse.Namespace) -> int:
    target = resolve()
    began = time.perf_counter()
    target.ensure_running()
    if not target.embedded:
        asyncio.run(_reachable(target))  # "ready" only once it answers
    started = time.perf_counter()
    print(f"server ready: {target.label()} ({started - began:.1f} s)")
    if not target.embedded:
        print(f"building {target.template()} there as the role in DATABASE_URL (prefix from {target.prefix_source}); "
              "a class's learners get theirs from their own setup cells or `course class setup --templates`")
    name = asyncio.run(databases.ensure_template(progress=True, verify=True, target=target))
    print(f"template ready: {name} ({time.perf_counter() - started:.1f} s)")
    return 0


async def _reachable(target: Target) -> None:
    async with admin(target):
        pass


def stop(_: argparse.Namespace) -> int:
    target = resolve()
    if not target.embedded:
        print(f"DATABASE_URL is set: {target.label()} is not ours to stop.")
        return 0
    target.forget_running()
    print("embedded server stopped" if target.server().stop() else "embedded server was not running")
    return 0


def status(_: argparse.Namespace) -> int:
    target = resolve()
    print(f"server:    {target.label()}")
    print(f"prefix:    {target.prefix} (from {target.prefix_source})")
    if target.embedded and target.server().running() is None:
        print("state:     not running (it starts on first use, or with `python -m helpers db start`)")
        return 1
    print(f"dsn:       {mask(target.dsn())}")
    version, owned, (_state, template), legacy = asyncio.run(_status(target))
    print(f"version:   {version}")
    print(f"template:  {template}")
    print(f"databases: {', '.join(owned) or '(none yet)'}")
    if legacy:
        print(f"older:     {', '.join(legacy)} (named before the `__` scheme; `db reset` drops them)")
    return 0


async def _status(target: Target) -> tuple[str, list[str], tuple[str, str], list[str]]:
    async with admin(target) as conn:
        version = await conn.fetchval("SHOW server_version")
    return (version, await databases.course_databases(target), await databases.template_status(target),
            await databases.legacy_databases(target))


def url(args: argparse.Namespace) -> int:
    target = resolve()
    target.ensure_running()
    dsn = target.dsn()
    if mask(dsn) != dsn and not args.show_password:
        print("(the password is masked; `db url --show-password` prints it)", file=sys.stderr)
        dsn = mask(dsn)
    print(dsn)
    return 0


def reset(_: argparse.Namespace) -> int:
    target = resolve()
    dropped = asyncio.run(databases.drop_course_databases(target))
    print(f"dropped ({target.prefix}'s only): {', '.join(dropped) or '(nothing)'}")
    name = asyncio.run(databases.ensure_template(progress=True, target=target))
    print(f"template rebuilt: {name}")
    return 0


def template(_: argparse.Namespace) -> int:
    print(f"template ready: {asyncio.run(databases.ensure_template(progress=True, verify=True))}")
    return 0


def run_psql(args: argparse.Namespace) -> int:
    target = resolve()
    database = "postgres" if args.notebook in (None, "postgres") else target.database(args.notebook)
    if database != "postgres":
        asyncio.run(_require_database(target, database, args.notebook))
    else:
        target.ensure_running()
    dsn, secret = for_child(target.dsn(database))  # the password by environment: argv is public
    os.execve(binary("psql"), ["psql", dsn, *args.psql_args], {**os.environ, **secret})


async def _require_database(target: Target, database: str, notebook: str) -> None:
    async with admin(target) as conn:
        exists = await conn.fetchval("SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", database)
    if not exists:
        raise CourseError(
            f"The database {database} does not exist yet on {target.label()}: a notebook's database is "
            f"made by its setup cell (`notebook_database({notebook!r})`).",
            f"open notebooks/{notebook}.ipynb and run its setup cell, then run this command again; "
            "`python -m helpers db status` lists the databases that exist.",
        )


# -- class ------------------------------------------------------------------------------
def class_setup(args: argparse.Namespace) -> int:
    from . import classroom

    target = resolve()
    made = asyncio.run(classroom.setup(target, args.learner, args.shared_role, args.out))
    print(f"roles ready on {target.label()}: {', '.join(sorted({one.role for one in made}))}, "
          f"and the demo role {LEARNER_ROLE}")
    print(f"class file: {args.out} (passwords inside: readable by you only)")
    if args.templates:
        for one in made:
            began = time.perf_counter()
            learner = classroom.learner_target(target, one)
            name = asyncio.run(databases.ensure_template(target=learner))
            print(f"template ready: {name}, built as {one.role} ({time.perf_counter() - began:.1f} s)")
    return 0


def class_prefix(args: argparse.Namespace) -> int:
    from .classroom import hub_name, hub_prefix

    for name in args.names:
        print(f"{name}: JupyterHub lists {hub_name(name)!r}; prefix {hub_prefix(name)}")
    return 0


# -- notebooks, doctor ------------------------------------------------------------------
def execute_notebooks(args: argparse.Namespace) -> int:
    from ..maintainers.notebooks import course_notebooks, execute_in_place

    for path in args.paths or course_notebooks():
        print(f"{path.name}: {execute_in_place(path.resolve()):.1f} s", flush=True)
    return 0


def run_doctor(_: argparse.Namespace) -> int:
    from .doctor import run

    return run()
