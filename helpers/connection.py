"""Connecting to the course's server with a clear answer when that fails.

Which server (embedded or DATABASE_URL) is decided once, in `helpers.target`; this module
turns each way a connection can fail into one paragraph that names that server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from . import diagnose
from .diagnose import CONNECT_TIMEOUT, NotListening
from .errors import ServerError
from .server import EmbeddedServer
from .target import Target, hide_password, parse_url, resolve


def embedded_server() -> EmbeddedServer:
    """The embedded server of this repository (kept for older callers: `resolve().server()`)."""
    return resolve().server()


def server_dsn(database: str = "postgres") -> str:
    """The DSN of `database` on the course's server, starting the embedded server if it is the one."""
    target = resolve()
    target.ensure_running()
    return target.dsn(database)


def with_database(url: str, database: str) -> str:
    """The same server and credentials as `url`, another database."""
    return urlunsplit(parse_url(url)._replace(path=f"/{database}"))


describe = hide_password


async def connect(dsn: str, **kwargs: Any) -> asyncpg.Connection:
    """`asyncpg.connect` with a timeout and a one-paragraph answer for each way it can fail."""
    target = resolve()
    if not target.embedded:
        parse_url(dsn)
    try:
        connection: asyncpg.Connection = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT, **kwargs)
        return connection
    except Exception as error:
        paragraph = await diagnose.connect_failure(error, dsn, target)
        if paragraph is None:
            raise
        raise paragraph from None


#: What asyncpg raises when the server goes away in the middle of a statement (kill -9, OOM, a stop).
CONNECTION_LOST = (asyncpg.ConnectionDoesNotExistError, asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,
                   asyncpg.CannotConnectNowError, asyncpg.InterfaceError, ConnectionError)


@asynccontextmanager
async def connected(dsn: str, **kwargs: Any) -> AsyncIterator[asyncpg.Connection]:
    """`async with connected(dsn) as conn:` — connect (with the clear errors above), always close."""
    conn = await connect(dsn, **kwargs)
    try:
        yield conn
    finally:
        await _close(conn)


@asynccontextmanager
async def explained(target: Target, doing: str) -> AsyncIterator[None]:
    """Turn a failure while `doing` (a step of a setup cell) into one paragraph from its real cause:
    the server went away or crashed, its disk is full, the role lacks a privilege (`helpers.diagnose`)."""
    since = diagnose.log_offset(target)
    try:
        yield
    except Exception as error:
        paragraph = await diagnose.setup_failure(error, target, doing, since)
        if paragraph is None:
            raise
        raise paragraph from None


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await conn.close(timeout=2)
    except (TimeoutError, *CONNECTION_LOST, OSError):
        conn.terminate()


@asynccontextmanager
async def admin(target: Target | None = None) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the maintenance database of `target` (default: the resolved one).

    The embedded server is started on first use in this process; if it went away since (a
    crash, `db stop`), it is started again once, so rerunning a setup cell is all it takes.
    """
    target = target or resolve()
    target.ensure_running()
    try:
        conn = await connect(target.dsn())
    except NotListening:
        if not target.embedded:
            raise
        target.ensure_running(recheck=True)
        conn = await connect(target.dsn())
    try:
        yield conn
    finally:
        await _close(conn)


LEARNER_ROLE = "course_learner"
LEARNER_PASSWORD = "learner"  # a documented local development password, not a secret


async def learner_dsn(database: str, password: str = LEARNER_PASSWORD) -> str:
    """A DSN that logs in as `course_learner` with `password`, for showing what a wrong one does.

    The role (password `learner`) is created or reset on the course's server, embedded or
    not; a server role without the right to create roles gets a message saying what to ask for.
    """
    target = resolve()
    async with admin(target) as conn:
        await _ensure_learner_role(conn)
    parts = urlsplit(target.dsn(database))
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{LEARNER_ROLE}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


async def _ensure_learner_role(admin: asyncpg.Connection) -> None:
    """Create or reset the role; an advisory lock keeps two learners' kernels from racing on it."""
    try:
        async with admin.transaction():
            await admin.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"course-role:{LEARNER_ROLE}")
            exists = await admin.fetchval("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", LEARNER_ROLE)
            # CREATE/ALTER ROLE take no $-parameters; format() quotes the name and password on the server.
            statement = await admin.fetchval(
                "SELECT format($1, $2::text, $3::text)",
                "ALTER ROLE %I LOGIN PASSWORD %L" if exists else "CREATE ROLE %I LOGIN PASSWORD %L",
                LEARNER_ROLE, LEARNER_PASSWORD)
            await admin.execute(statement)
    except asyncpg.InsufficientPrivilegeError:
        if exists:
            return  # someone with the right made it; trust its password is the documented one
        raise ServerError(
            f"The role in DATABASE_URL may not create roles, and the role {LEARNER_ROLE!r} does not exist.",
            f"ask the server's owner to run: CREATE ROLE {LEARNER_ROLE} LOGIN PASSWORD '{LEARNER_PASSWORD}';",
        ) from None
