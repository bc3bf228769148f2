"""One database per notebook, cloned from a seeded template.

The template holds the schema and the chapter's data.  It is built once per server and
prefix, and rebuilt when the schema, seed code or word list change (their hash is stored as
the template's comment).  It refuses connections, so no notebook or test can change it;
`CREATE DATABASE … TEMPLATE` copies it in well under a second.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import asyncpg

from . import config, schema, seed
from .connection import connect, server_dsn
from .errors import ConfigError

_NAME_RE = re.compile(r"[a-z0-9_]{1,32}")
_TEMPLATE_SOURCES = [Path(schema.__file__), Path(seed.__file__), seed.WORDS_FILE]


def template_version() -> str:
    digest = hashlib.sha256()
    for source in _TEMPLATE_SOURCES:
        digest.update(source.read_bytes())
    return "eshop-" + digest.hexdigest()[:16]


def template_name() -> str:
    return f"{config.db_prefix()}_eshop_template"


def database_name(notebook: str) -> str:
    """`04_pools` → `<prefix>_04_pools`; the name is checked, since identifiers cannot be $-parameters."""
    if not _NAME_RE.fullmatch(notebook):
        raise ConfigError(f"{notebook!r} cannot name a course database.",
                          "use lowercase letters, digits and underscores, e.g. '04_pools'.")
    return f"{config.db_prefix()}_{notebook}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def notebook_database(notebook: str, *, seeded: bool = True) -> str:
    """A fresh database for one notebook (dropped and re-created on every call); return its DSN.

    seeded=True clones the template (schema and the chapter's data); seeded=False gives an
    empty database, for the notebooks that build the schema themselves.
    """
    name = database_name(notebook)
    admin = await connect(server_dsn())
    try:
        source = await _ensure_template(admin) if seeded else "template0"
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {quote_ident(name)} TEMPLATE {quote_ident(source)}")
    finally:
        await admin.close()
    return server_dsn(name)


async def ensure_template(*, progress: bool = False, force: bool = False) -> str:
    """Build the template unless an up-to-date one exists; return its name."""
    admin = await connect(server_dsn())
    try:
        return await _ensure_template(admin, progress=progress, force=force)
    finally:
        await admin.close()


async def course_databases() -> list[str]:
    """The databases this prefix owns on the server (template included), by name."""
    admin = await connect(server_dsn())
    try:
        rows = await admin.fetch("SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname",
                                 config.db_prefix() + "_")
    finally:
        await admin.close()
    return [row["datname"] for row in rows]


async def drop_course_databases() -> list[str]:
    """Drop every database of this prefix, the template too; return their names."""
    names = await course_databases()
    admin = await connect(server_dsn())
    try:
        for name in names:
            await _drop(admin, name)
    finally:
        await admin.close()
    return names


async def _ensure_template(admin: asyncpg.Connection, *, progress: bool = False, force: bool = False) -> str:
    """Build under an advisory lock, so two kernels (or learners) never build the same template at once."""
    name, version = template_name(), template_version()
    lock_key = f"course-template:{name}"
    await admin.execute("SELECT pg_advisory_lock(hashtext($1))", lock_key)
    try:
        current = await admin.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name)
        if current == version and not force:
            return name
        await _build(admin, name, version, progress=progress)
        return name
    finally:
        await admin.execute("SELECT pg_advisory_unlock(hashtext($1))", lock_key)


async def _build(admin: asyncpg.Connection, name: str, version: str, *, progress: bool) -> None:
    """Build into a scratch database, then swap it in: a failed build leaves the old template alone."""
    scratch = f"{name}_build"
    await _drop(admin, scratch)
    await admin.execute(f"CREATE DATABASE {quote_ident(scratch)} TEMPLATE template0")
    conn = await connect(server_dsn(scratch))
    try:
        await schema.create_schema(conn)
        await seed.load_with_copy(conn, seed.generate_dataset(), progress=progress)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    await _drop(admin, name)
    await admin.execute(f"ALTER DATABASE {quote_ident(scratch)} RENAME TO {quote_ident(name)}")
    await admin.execute(f"ALTER DATABASE {quote_ident(name)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
    # COMMENT takes no parameters; the version is our own hex digest, checked here.
    assert re.fullmatch(r"eshop-[0-9a-f]{16}", version)
    await admin.execute(f"COMMENT ON DATABASE {quote_ident(name)} IS '{version}'")


async def _drop(admin: asyncpg.Connection, name: str) -> None:
    exists = await admin.fetchval("SELECT datistemplate FROM pg_database WHERE datname = $1", name)
    if exists is None:
        return
    if exists:
        await admin.execute(f"ALTER DATABASE {quote_ident(name)} WITH IS_TEMPLATE false")
    await admin.execute(f"DROP DATABASE {quote_ident(name)} WITH (FORCE)")


async def fingerprint(connection: asyncpg.Connection) -> dict[str, tuple[int, str]]:
    """Row count and an md5 of every row, in key order, for each table: equal fingerprints, equal data."""
    result = {}
    for table in schema.TABLES:
        # table names come from our own constant list, never from input
        row = await connection.fetchrow(
            f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY t), '')) AS digest FROM {table} t")
        result[table] = (row["n"], row["digest"])
    return result


async def template_fingerprint() -> dict[str, tuple[int, str]]:
    """The template's fingerprint, read from a throw-away clone (the template refuses connections)."""
    scratch = f"fingerprint_{os.getpid()}"  # two sessions at once must not share it
    conn = await connect(await notebook_database(scratch))
    try:
        return await fingerprint(conn)
    finally:
        await conn.close()
        admin = await connect(server_dsn())
        try:
            await _drop(admin, database_name(scratch))
        finally:
            await admin.close()
