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

from . import config, diagnose
from .diagnose import CONNECT_TIMEOUT, NotListening
from .target import Target, parse_url, resolve


def server_dsn(database: str = "postgres") -> str:
    """The DSN of `database` on the course's server, starting the embedded server if it is the one."""
    target = resolve()
    target.ensure_running()
    return target.dsn(database)




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
#: The comment `course class setup` puts on the demo role: its password is the instructor's, never reset here.
CLASS_ROLE_COMMENT = "course class setup: notebook 01's demo role; password chosen by the instructor"


async def learner_dsn(database: str, password: str | None = None) -> str:
    """A DSN that logs in to `database` as `course_learner`, for showing what a wrong password does.

    Without `password`, the right one: on a server of the learner's own the role is created
    or reset with the public password `learner`; on a class server the instructor made it with
    `course class setup`, and the spawner hands its password over as COURSE_DEMO_PASSWORD.
    Where the role cannot be used, a one-line note says why and the DSN logs in as the
    learner's own role instead, so the demo still meets a real server's answer.
    """
    target = resolve()
    chosen = config.demo_password()
    async with admin(target) as conn:
        problem = await _ensure_learner_role(conn, reset=chosen is None)
        if not problem and not target.embedded and database.startswith(f"{target.prefix}__"):
            # the learner's databases admit only their owner: this one admits the demo role too
            await conn.execute(await conn.fetchval("SELECT format('GRANT CONNECT ON DATABASE %I TO %I', $1::text, $2::text)",
                                                   database, LEARNER_ROLE))
    parts = urlsplit(target.dsn(database))
    host = parts.netloc.rpartition("@")[2]
    if problem:
        print(f"Note: {problem}; this demo logs in as your own role instead.")
        if password is None:
            return target.dsn(database)
        return urlunsplit(parts._replace(netloc=f"{quote(parts.username or '', safe='')}:{quote(password, safe='')}@{host}"))
    right = chosen or LEARNER_PASSWORD
    netloc = f"{LEARNER_ROLE}:{quote(right if password is None else password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


async def _ensure_learner_role(admin: asyncpg.Connection, *, reset: bool) -> str | None:
    """Make the role usable with the public password if `reset` may; None when usable, else why not.

    An advisory lock keeps two learners' kernels from racing on it; a role `course class setup`
    made keeps the instructor's password.
    """
    exists = False
    try:
        async with admin.transaction():
            await admin.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"course-role:{LEARNER_ROLE}")
            row = await admin.fetchrow("SELECT oid FROM pg_roles WHERE rolname = $1", LEARNER_ROLE)
            exists = row is not None
            by_class = row is not None and await admin.fetchval(
                "SELECT shobj_description($1, 'pg_authid') = $2", row["oid"], CLASS_ROLE_COMMENT)
            if not reset:  # the instructor's role, if it exists: its password is COURSE_DEMO_PASSWORD
                return None if exists else _unusable(exists=False)
            if by_class:
                return _unusable(exists=True)
            # CREATE/ALTER ROLE take no $-parameters; format() quotes the name and password on the server.
            statement = await admin.fetchval(
                "SELECT format($1, $2::text, $3::text)",
                "ALTER ROLE %I LOGIN PASSWORD %L" if exists else "CREATE ROLE %I LOGIN PASSWORD %L",
                LEARNER_ROLE, LEARNER_PASSWORD)
            await admin.execute(statement)
    except asyncpg.InsufficientPrivilegeError:
        # someone with the right made it before: trust its password is the documented one
        return None if exists else _unusable(exists=False)
    return None


def _unusable(*, exists: bool) -> str:
    if not exists:
        return (f"the class server has no role {LEARNER_ROLE!r} and yours may not create it "
                "(the instructor makes it with `course class setup`)")
    return (f"the role {LEARNER_ROLE!r} has a password chosen by the instructor, and "
            f"{config.DEMO_PASSWORD_VAR} is not set here (the class's spawner sets it)")
