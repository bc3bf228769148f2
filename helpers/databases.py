"""One database per notebook, cloned from a seeded template that heals itself.

The template holds the schema and the chapter's data.  It is built once per server and
prefix, into a scratch database that is swapped in only when complete, so a build killed
half-way leaves nothing half-built behind.  Its comment records three things: the version of
the code that built it (schema, seed, word list, this module), a digest of its state as a
notebook sees it (row counts, highest keys, every sequence's last value) and a digest of
every row.

Why the sequences: PostgreSQL writes a sequence to the WAL 32 values ahead, so after a crash
(``kill -9``, a laptop that dies) recovery would leave `brand_brand_id_seq` at 132 instead of
100, and every notebook's next brand would be 133.  The build therefore ends by setting each
sequence to its own value (a WAL record of the exact value) and, where the role may, a
CHECKPOINT.  Should a template drift all the same, every clone is checked against the
recorded state and a drifted template is rebuilt, with a one-line notice, before it is used.

The template refuses connections, so no notebook or test can change it; `CREATE DATABASE …
TEMPLATE` copies it in well under a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from . import config, names, schema, seed
from .connection import CONNECTION_LOST, admin, connected, explained
from .target import Target, resolve

_TEMPLATE_SOURCES = [Path(schema.__file__), Path(seed.__file__), seed.WORDS_FILE, Path(__file__)]
_COMMENT_RE = re.compile(r"(eshop-[0-9a-f]{16}) state-([0-9a-f]{16}) rows-([0-9a-f]{16})")


def template_version() -> str:
    digest = hashlib.sha256()
    for source in _TEMPLATE_SOURCES:
        digest.update(source.read_bytes())
    return "eshop-" + digest.hexdigest()[:16]


def template_name() -> str:
    return resolve().template()


def database_name(notebook: str) -> str:
    """`04_connection_pools` → `<prefix>__04_connection_pools` (see `helpers.names`)."""
    return resolve().database(notebook)


@dataclass(frozen=True)
class Recorded:
    """What the template's comment says about it."""

    version: str
    state: str  # digest of `quick_state`: counts, highest keys, sequences
    rows: str  # digest of `fingerprint(..., sequences=True)`: every row

    def comment(self) -> str:
        return f"{self.version} state-{self.state} rows-{self.rows}"

    @classmethod
    def parse(cls, comment: str | None) -> Recorded | None:
        match = _COMMENT_RE.fullmatch(comment or "")
        return cls(*match.groups()) if match else None


# -- the public API ---------------------------------------------------------------------
async def notebook_database(notebook: str, *, seeded: bool = True, target: Target | None = None) -> str:
    """A fresh database for one notebook (dropped and re-created on every call); return its DSN.

    Called again while the notebook's variables hold connections to its database (a setup
    cell run again), it closes them (the server has ended them) and says which cells to run
    next; the first run prints nothing.

    seeded=True clones the template (schema and the chapter's data); seeded=False gives an
    empty database, for the notebooks that build the schema themselves.
    """
    target = target or resolve()
    name = target.database(notebook)
    async with explained(target, f"making {name}"), admin(target) as conn:
        held = _held_connections(await conn.fetchval(
            "SELECT array_agg(pid) FROM pg_stat_activity WHERE datname = $1", name) or [])
        if not seeded:
            await _recreate(conn, name, "template0", private=not target.embedded)
        else:
            async with _template_lock(conn, target):
                recorded = await _ensure_template(conn, target)
                await _recreate(conn, name, target.template(), private=not target.embedded)
                drift = _drift(recorded.state, await quick_state_of(target.dsn(name)))
                if drift:
                    await _rebuild_drifted(conn, target, drift)
                    await _recreate(conn, name, target.template(), private=not target.embedded)
    if held:  # the server has closed them: say so now, not at the next query
        for connection in held.values():
            with contextlib.suppress(asyncpg.InterfaceError):  # a pool's connection the pool already let go
                connection.terminate()
        print(_what_to_run_next(notebook, list(held)))
    return target.dsn(name)


def _what_to_run_next(notebook: str, closed: list[str]) -> str:
    """What a setup cell run again says, when the drop closed connections the notebook holds."""
    names = [f"`{name}`" for name in closed]
    held = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return (f"The database of {notebook} was made anew, and {held} (open on the old one) "
            f"{'is' if len(closed) == 1 else 'are'} closed now. Run the cells below this one again, in order, "
            "before going on (JupyterLab: click the next cell, then Run > Run Selected Cell and All Below).")


def _held_connections(pids: list[int]) -> dict[str, asyncpg.Connection]:
    """The notebook's variables (in IPython; none elsewhere) that hold an open connection to one of `pids`."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    variables: dict[str, object] = dict(getattr(shell, "user_ns", {}))
    return {name: value for name, value in variables.items()
            if not name.startswith("_") and isinstance(value, asyncpg.Connection) and _open_on(value, pids)}


def _open_on(connection: asyncpg.Connection, pids: list[int]) -> bool:
    """Open, on one of `pids`.  A variable may also hold a pool's connection (it passes isinstance):
    borrowed, it counts; given back to the pool, every call raises, and it is the pool's, not ours."""
    try:
        return not connection.is_closed() and connection.get_server_pid() in pids
    except asyncpg.InterfaceError:  # "connection has been released back to the pool"
        return False


async def ensure_template(*, progress: bool = False, force: bool = False, verify: bool = False,
                          target: Target | None = None) -> str:
    """Build the template unless an up-to-date one exists; return its name.

    verify=True also reads every row of it (through a clone, ~0.5 s) and rebuilds it when
    anything differs from what was recorded at build time.
    """
    target = target or resolve()
    async with (explained(target, f"building {target.template()}"), admin(target) as conn,
                _template_lock(conn, target)):
        recorded = await _ensure_template(conn, target, progress=progress, force=force)
        if verify:
            state, rows = await _read_template(conn, target)
            drift = _drift(recorded.state, state) or ("rows differ" if _digest(rows) != recorded.rows else "")
            if drift:
                await _rebuild_drifted(conn, target, drift, progress=progress)
    return target.template()


async def template_status(target: Target | None = None) -> tuple[str, str]:
    """("ok" | "missing" | "stale", words) for `doctor` and `db status`; changes nothing."""
    target = target or resolve()
    async with admin(target) as conn:
        comment = await _comment(conn, target.template())
    if comment is None:
        return "missing", f"{target.template()} is not built yet (the first setup cell or `db template` builds it)"
    recorded = Recorded.parse(comment)
    if recorded is None or recorded.version != template_version():
        return "stale", f"{target.template()} was built by other code; it is rebuilt on next use (or `db template`)"
    return "ok", f"{target.template()} ({recorded.version})"


async def course_databases(target: Target | None = None) -> list[str]:
    """The databases this prefix owns on the server (template included), by name."""
    target = target or resolve()
    async with admin(target) as conn:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname",
                                names.owned_pattern(target.prefix))
    return [row["datname"] for row in rows if names.owner(row["datname"]) == target.prefix]


async def legacy_databases(target: Target | None = None) -> list[str]:
    """This prefix's databases named the way the course did before `__` (`alice_04_connection_pools`).

    Only exact names are matched (the template, the notebooks, the bench), never a pattern, so
    `team` cannot match anything of `team_3`'s.
    """
    target = target or resolve()
    stems = [path.stem for path in config.notebook_paths()]
    old = [f"{target.prefix}_{suffix}" for suffix in
           ("eshop_template", "eshop_template_build", "bench", "bench_seed", *stems)]
    async with admin(target) as conn:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname = ANY($1::text[]) ORDER BY 1", old)
    return [row["datname"] for row in rows]


async def drop_course_databases(target: Target | None = None) -> list[str]:
    """Drop every database of this prefix (older-named ones too), the template too; return their names."""
    target = target or resolve()
    dropped = await course_databases(target) + await legacy_databases(target)
    async with admin(target) as conn, _template_lock(conn, target):
        for name in dropped:
            await drop_database(conn, name)
    return dropped


async def fingerprint(connection: asyncpg.Connection, *, sequences: bool = False) -> dict[str, tuple[int, str]]:
    """Row count and an md5 of every row, in key order, for each table: equal fingerprints, equal data.

    sequences=True adds the entry "sequences": the last value of each, which decides the
    keys of the next rows a notebook inserts.
    """
    result = {}
    for table in schema.TABLES:
        # table names come from our own constant list, never from input
        row = await connection.fetchrow(
            f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t), '')) AS digest FROM {table} t")
        assert row is not None  # an aggregate always returns one row
        result[table] = (row["n"], row["digest"])
    if sequences:
        values = await _sequence_values(connection)
        result["sequences"] = (len(values), ",".join(f"{name}={value}" for name, value in values))
    return result


async def quick_state(connection: asyncpg.Connection) -> dict[str, object]:
    """What the next rows a notebook reads or inserts depend on, in a few milliseconds.

    Row counts and highest keys catch lost or added rows; the sequences catch the jump after
    a crash.  (Every row's content is compared by `ensure_template(verify=True)`.)
    """
    state: dict[str, object] = {}
    for table in schema.TABLES:
        # table and key names come from our own constant list; each table's key is <table>_id
        row = await connection.fetchrow(f"SELECT count(*) AS n, max({table}_id) AS top FROM {table}")
        assert row is not None  # an aggregate always returns one row
        state[table] = (row["n"], row["top"])
    state["sequences"] = await _sequence_values(connection)
    return state


async def quick_state_of(dsn: str) -> dict[str, object]:
    async with connected(dsn) as conn:
        return await quick_state(conn)


async def template_fingerprint(target: Target | None = None) -> dict[str, tuple[int, str]]:
    """The template's fingerprint, sequences included, read from a throw-away clone (it refuses connections)."""
    target = target or resolve()
    async with admin(target) as conn, _template_lock(conn, target):
        await _ensure_template(conn, target)
        return (await _read_template(conn, target))[1]


async def drop_database(admin_conn: asyncpg.Connection, name: str) -> None:
    """Drop `name` if it exists, even when it is a template or has sessions open."""
    is_template = await admin_conn.fetchval("SELECT datistemplate FROM pg_database WHERE datname = $1", name)
    if is_template is None:
        return
    if is_template:
        await _ddl(admin_conn, "ALTER DATABASE %I WITH IS_TEMPLATE false", name)
    await _ddl(admin_conn, "DROP DATABASE IF EXISTS %I WITH (FORCE)", name)


# -- building and checking --------------------------------------------------------------
class _template_lock:
    """A server-side advisory lock per template: two kernels (or learners) never build or swap it at once."""

    def __init__(self, conn: asyncpg.Connection, target: Target) -> None:
        self.conn, self.key = conn, f"course-template:{target.template()}"

    async def __aenter__(self) -> None:
        await self.conn.execute("SELECT pg_advisory_lock(hashtext($1))", self.key)

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.conn.execute("SELECT pg_advisory_unlock(hashtext($1))", self.key)
        except CONNECTION_LOST:
            if exc[0] is None:
                raise  # else the error that lost the connection is the one to report; the lock went with it


async def _ensure_template(conn: asyncpg.Connection, target: Target, *, progress: bool = False,
                           force: bool = False) -> Recorded:
    """The recorded state of an up-to-date template, building it first when needed (lock held)."""
    recorded = Recorded.parse(await _comment(conn, target.template()))
    if recorded is not None and recorded.version == template_version() and not force:
        return recorded
    return await _build(conn, target, progress=progress)


async def _build(conn: asyncpg.Connection, target: Target, *, progress: bool) -> Recorded:
    """Build into a scratch database, then swap it in: a failed build leaves the old template alone."""
    name, scratch = target.template(), names.build_name(target.prefix)
    await drop_database(conn, scratch)
    await _ddl(conn, "CREATE DATABASE %I TEMPLATE template0", scratch)
    try:
        async with connected(target.dsn(scratch)) as build:
            recorded = await _watched(build, _fill(build, progress=progress))
    except asyncpg.PostgresError:
        with contextlib.suppress(Exception):  # the error that stopped the build is the one to report
            await drop_database(conn, scratch)  # frees its disk now: a full disk is one way to get here
        raise
    await _checkpoint(conn)
    await drop_database(conn, name)
    await _ddl(conn, "ALTER DATABASE %I RENAME TO %I", scratch, name)
    await _ddl(conn, "ALTER DATABASE %I WITH IS_TEMPLATE true ALLOW_CONNECTIONS false", name)
    # the comment comes last: a template without it is rebuilt, so a crash before here is harmless
    await _ddl(conn, "COMMENT ON DATABASE %I IS %L", name, recorded.comment())
    return recorded


async def _fill(build: asyncpg.Connection, *, progress: bool) -> Recorded:
    await schema.create_schema(build)
    await seed.load_with_copy(build, seed.generate_dataset(), progress=progress)
    await build.execute("ANALYZE")
    await _log_sequences_exactly(build)
    return Recorded(template_version(), _digest(await quick_state(build)),
                    _digest(await fingerprint(build, sequences=True)))


async def _watched(conn: asyncpg.Connection, work: Coroutine[Any, Any, Recorded]) -> Recorded:
    """Run `work` on `conn`, and stop waiting when the connection dies.

    asyncpg's COPY waits for the socket to drain; when the server is killed meanwhile, that
    wait never ends (or asyncpg trips over its own state).  A termination listener cancels it.
    """
    task = asyncio.ensure_future(work)

    def lost(_: object) -> None:
        task.cancel()

    conn.add_termination_listener(lost)
    try:
        return await task
    except (asyncio.CancelledError, asyncpg.InternalClientError) as error:
        if conn.is_closed():
            raise asyncpg.ConnectionDoesNotExistError("the connection was lost during the build") from error
        raise
    finally:
        conn.remove_termination_listener(lost)


async def _log_sequences_exactly(conn: asyncpg.Connection) -> None:
    """Set each used sequence to its own value: setval WAL-logs that exact value, not 32 ahead."""
    await conn.execute(
        "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, last_value) "
        "FROM pg_sequences WHERE last_value IS NOT NULL")


async def _checkpoint(conn: asyncpg.Connection) -> None:
    """Write everything to disk now, so recovery after a crash has nothing of the build to replay.

    Only superusers (and pg_checkpoint members, PostgreSQL 15+) may; without it the exact
    setval above still keeps the sequences right.
    """
    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
        await conn.execute("CHECKPOINT")


async def _read_template(conn: asyncpg.Connection, target: Target) -> tuple[dict[str, object], dict[str, tuple[int, str]]]:
    """(quick state, full fingerprint) of the template, read through a clone of this process's own."""
    check = names.check_name(target.prefix, os.getpid())
    await _recreate(conn, check, target.template())
    try:
        async with connected(target.dsn(check)) as clone:
            return await quick_state(clone), await fingerprint(clone, sequences=True)
    finally:
        await drop_database(conn, check)


async def _rebuild_drifted(conn: asyncpg.Connection, target: Target, drift: str, *, progress: bool = False) -> None:
    started = time.perf_counter()
    await _build(conn, target, progress=progress)
    print(f"notice: the template {target.template()} had drifted ({drift}; e.g. after a server crash): "
          f"rebuilt in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def _drift(recorded: str, state: dict[str, object]) -> str:
    """'' when `state` is what the build recorded, else a few words on what differs."""
    if _digest(state) == recorded:
        return ""
    sequences = state.get("sequences") or []
    shown = ", ".join(f"{name} at {value}" for name, value in sequences)  # type: ignore[attr-defined]
    return f"its state differs from the recorded one: {shown}"


def _digest(value: object) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


async def _sequence_values(conn: asyncpg.Connection) -> list[tuple[str, int | None]]:
    rows = await conn.fetch("SELECT sequencename, last_value FROM pg_sequences ORDER BY schemaname, sequencename")
    return [(row["sequencename"], row["last_value"]) for row in rows]


async def _comment(conn: asyncpg.Connection, name: str) -> str | None:
    comment: str | None = await conn.fetchval(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name)
    return comment


async def _recreate(conn: asyncpg.Connection, name: str, template: str, *, private: bool = False) -> None:
    """Drop and create `name`; `private`: on a shared server, only its owner (and superusers) may connect."""
    await _ddl(conn, "DROP DATABASE IF EXISTS %I WITH (FORCE)", name)
    await _ddl(conn, "CREATE DATABASE %I TEMPLATE %I", name, template)
    if private:
        await _ddl(conn, "REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC", name)


async def _ddl(conn: asyncpg.Connection, statement: str, *values: str) -> None:
    """Run DDL whose names (and literals) are quoted by the server's format(): DDL takes no $-parameters."""
    placeholders = ", ".join(f"${i}::text" for i in range(2, len(values) + 2))
    await conn.execute(await conn.fetchval(f"SELECT format($1, {placeholders})", statement, *values))
