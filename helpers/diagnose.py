"""Why connecting, or a step of a setup cell, failed: one paragraph, read from the real cause.

The cause is read from what the failure left behind, never guessed from its type alone: the
asyncpg error and its SQLSTATE, where the DSN's `sslmode` came from, a fresh connection
attempt afterwards, and for the embedded server its process and the lines its log got.
`connection` and `databases` raise these paragraphs; `tracebacks` appends the ones about
connections to a learner's own asyncpg error in a notebook cell.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import shutil
import socket
import threading
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg

from .dsn import mask
from .errors import ConfigError, CourseError, ServerError
from .target import Target, resolve

CONNECT_TIMEOUT = 5.0
PROBE_TIMEOUT = 2.0
#: The most connections a notebook holds at once, measured by sampling pg_stat_activity every
#: 10 ms while each notebook ran alone (`jupyter nbconvert --execute`): 04's pools 17, the
#: performance lab (10) 35, every other notebook 3 or fewer.
NOTEBOOK_PEAK_CONNECTIONS = 17
LAB_PEAK_CONNECTIONS = 35
#: What the seeded template takes on disk, and the WAL its build writes (measured, PostgreSQL
#: 18: 14.8 MB and 14.2 MB; tests/test_faults.py keeps these within a third of the real ones).
TEMPLATE_MB = 15
BUILD_WAL_MB = 15


class NotListening(ServerError):
    """Nothing answers at the server's address: for the embedded server, a start fixes it."""


class ConnectionLost(ServerError):
    """A connection that was open broke: the server stopped, crashed, or ended it."""


class DiskFull(ServerError):
    """The server could not write: its disk (or the one of its WAL) is full."""


class OutOfConnections(ServerError):
    """The server turned a connection away: all its connection slots are taken."""


class NoPrivilege(ServerError):
    """The role in the DSN may not do what the course needs; the paragraph gives the SQL to grant it."""


# -- connecting ---------------------------------------------------------------------------
async def connect_failure(error: BaseException, dsn: str, target: Target) -> CourseError | None:
    """The paragraph for `error`, raised by `asyncpg.connect(dsn)`; None when we cannot explain it."""
    where = f"{mask(dsn)} ({target.kind})"
    sslmode, ssl_source = sslmode_of(dsn)
    if isinstance(error, asyncpg.InvalidPasswordError):
        return ServerError(f"The server at {where} refused the password.", target.login_advice())
    if isinstance(error, asyncpg.InvalidAuthorizationSpecificationError):
        if "no encryption" in str(error) and sslmode == "disable":
            return ServerError(
                f"The server at {where} refuses connections without TLS ({error}), and sslmode=disable "
                f"({ssl_source}) forbids TLS.",
                "remove sslmode=disable (asyncpg's default, sslmode=prefer, uses TLS when the server offers it) "
                "or set sslmode=require.")
        return ServerError(f"The server at {where} refused the login: {error}.",
                           target.login_advice() + " Or ask the server's owner for a role.")
    if isinstance(error, asyncpg.InvalidCatalogNameError):
        database = urlsplit(dsn).path.lstrip("/") or "postgres"
        return ServerError(f"The database {database!r} does not exist on {target.label()}.",
                           "run the setup cell of the notebook that uses it (it creates the database), "
                           "or `python -m helpers db reset` to rebuild the course's databases.")
    if isinstance(error, asyncpg.CannotConnectNowError):
        return ServerError(f"The server at {where} is not accepting connections now ({error}): "
                           "it is starting up, shutting down or in recovery.",
                           "wait a few seconds and run the cell again; `python -m helpers db status` tells when it is up.")
    if isinstance(error, asyncpg.TooManyConnectionsError):
        return await out_of_connections(error, target)
    if isinstance(error, ConnectionError) and "rejected SSL upgrade" in str(error):
        return ServerError(
            f"The server at {where} does not offer TLS (it declined the TLS request), and sslmode={sslmode} "
            f"({ssl_source}) insists on it.",
            "on a trusted network (loopback, a class's private network) drop sslmode or set sslmode=prefer; "
            "otherwise ask the server's owner to turn TLS on (ssl = on, with a certificate).")
    if _refused(error):
        target.forget_running()
        reason = f"no socket file {error.filename}" if isinstance(error, FileNotFoundError) else "connection refused"
        return NotListening(f"No PostgreSQL server is listening at {where} ({reason}).", target.start_advice())
    if isinstance(error, socket.gaierror):
        host = urlsplit(dsn).hostname
        return ServerError(f"The host name {host!r} of {where} cannot be resolved ({error.strerror or error}).",
                           "check the host in DATABASE_URL (a typo, or a name only another network knows).")
    if isinstance(error, TimeoutError):
        return ServerError(
            f"Nothing at {where} answered within {CONNECT_TIMEOUT:.0f} s: the host is unreachable, a firewall "
            "drops the packets, or what listens there is not a PostgreSQL server (or is hung).",
            "check that the host and port in DATABASE_URL are right and reachable from here, or "
            + target.start_advice())
    if isinstance(error, OSError):
        return ServerError(f"Could not reach {where}: {error}.", target.start_advice())
    if isinstance(error, ValueError):
        return ConfigError(f"The DSN {mask(dsn)!r} cannot be used: {error}.",
                           "fix DATABASE_URL (postgresql://USER:PASSWORD@HOST:PORT/DATABASE).")
    return None


def sslmode_of(dsn: str) -> tuple[str, str]:
    """The sslmode asyncpg uses for `dsn`, and where it comes from (the DSN, PGSSLMODE or the default)."""
    given = parse_qs(urlsplit(dsn).query).get("sslmode")
    if given:
        return given[-1], "from the DSN"
    if os.environ.get("PGSSLMODE"):
        return os.environ["PGSSLMODE"], "from the environment variable PGSSLMODE"
    return "prefer", "asyncpg's default"


def _refused(error: BaseException) -> bool:
    """Connection refused, or no socket file: nothing listens there (asyncpg joins several addresses' errors)."""
    if isinstance(error, (ConnectionRefusedError, FileNotFoundError)):
        return True
    return isinstance(error, OSError) and error.errno is None and "Connect call failed" in str(error) \
        and f"[Errno {errno.ECONNREFUSED}]" in str(error)


# -- out of connections ---------------------------------------------------------------------
@dataclass(frozen=True)
class Slots:
    """The server's connection limits and use, as a superuser connection reads them."""

    max_connections: int
    superuser_reserved: int
    reserved: int  # reserved_connections (PostgreSQL 16+), 0 before
    open_now: int
    ours: int  # open to this prefix's databases


async def read_slots(target: Target) -> Slots | None:
    """The limits, read through the slots kept for superusers; None when this role cannot get in."""
    try:
        conn = await asyncpg.connect(target.dsn(), timeout=PROBE_TIMEOUT)
    except (asyncpg.PostgresError, OSError, TimeoutError):
        return None
    try:
        row = await conn.fetchrow(
            "SELECT current_setting('max_connections')::int AS m, "
            "current_setting('superuser_reserved_connections')::int AS s, "
            "coalesce(current_setting('reserved_connections', true), '0')::int AS r, "
            "count(*) FILTER (WHERE backend_type = 'client backend') AS open_now, "
            "count(*) FILTER (WHERE backend_type = 'client backend' AND starts_with(datname, $1)) AS ours "
            "FROM pg_stat_activity WHERE pid <> pg_backend_pid()", f"{target.prefix}__")  # this probe not counted
    finally:
        await conn.close()
    assert row is not None  # an aggregate always returns one row
    return Slots(row["m"], row["s"], row["r"], row["open_now"], row["ours"])


async def out_of_connections(error: BaseException, target: Target) -> OutOfConnections:
    slots = await read_slots(target)
    return OutOfConnections(_slots_what(error, target, slots), _slots_todo(slots))


def _slots_what(error: BaseException, target: Target, slots: Slots | None) -> str:
    what = f"{_capital(target.label())} turned a connection away: all its connection slots are taken ({error})."
    if slots is None:
        what += (" How many it allows is its setting max_connections, of which superuser_reserved_connections "
                 "are kept for superusers (a superuser reads both with SHOW).")
    else:
        kept = f"{slots.superuser_reserved} kept for superusers (superuser_reserved_connections)"
        if slots.reserved:
            kept += f" and {slots.reserved} for pg_use_reserved_connections (reserved_connections)"
        what += (f" It allows max_connections = {slots.max_connections}, {kept}; {slots.open_now} are open now, "
                 f"{slots.ours} of them to {target.prefix}'s databases.")
    return what + (f" A notebook of the course holds up to {NOTEBOOK_PEAK_CONNECTIONS} connections at once "
                   f"(04_connection_pools; the performance lab, 10, up to {LAB_PEAK_CONNECTIONS}; the others 3 or "
                   "fewer), and what a notebook opened stays open until it closes it or its kernel is shut down.")


def _capital(words: str) -> str:
    return words[:1].upper() + words[1:]


def _slots_todo(slots: Slots | None) -> str:
    reserved = f"{slots.superuser_reserved + slots.reserved}" if slots else "superuser_reserved_connections"
    return ("a learner: shut down the kernels of notebooks you are not using (JupyterLab: Kernel → Shut Down "
            "Kernel, or the Running panel), then run this cell again. An instructor: raise max_connections to at "
            f"least learners × {NOTEBOOK_PEAK_CONNECTIONS} + {reserved} (× {LAB_PEAK_CONNECTIONS} for the "
            "performance lab) with ALTER SYSTEM SET max_connections = …; and restart the server: max_connections "
            "changes only at a restart.")


# -- a setup step that failed ----------------------------------------------------------------
def log_offset(target: Target) -> int:
    """Where the embedded server's log ends now, so a failure can read what the server logged meanwhile."""
    if target.pgdata is None:
        return 0
    try:
        return target.server().log_file().stat().st_size
    except OSError:
        return 0


async def setup_failure(error: BaseException, target: Target, doing: str, since: int) -> CourseError | None:
    """The paragraph for a step of a setup cell that failed with `error`; None when it is not ours to explain.

    `since`: the embedded server's log size when the step began (`log_offset`).
    """
    if isinstance(error, CourseError):
        return None  # already said in words
    full = _find(error, asyncpg.DiskFullError)
    if full is not None:
        return disk_full(target, doing, getattr(full, "message", None) or str(full), dropped=True)
    denied = _find(error, asyncpg.InsufficientPrivilegeError)
    if denied is not None:
        return await no_privilege(denied, target, doing)
    lost = _find_lost(error)
    if lost is None:
        return None
    target.forget_running()
    log = _log_since(target, since)
    panic = re.search(r'PANIC:\s+(could not \w+ (?:to )?file "([^"]+)": No space left on device)', log)
    if panic:
        return disk_full(target, doing, f"the server log: PANIC: {panic.group(1)}", file=panic.group(2), dropped=False)
    return ConnectionLost(
        f"The connection to {target.label()} was lost while {doing} ({type(lost).__name__}: {lost}). "
        f"{await server_state(target, log)} Nothing is lost: databases are only swapped in when complete, and a "
        "half-built copy is dropped on the next try.",
        "run the cell (or command) again: " + ("the embedded server is restarted if it is down."
                                               if target.embedded else "once that server is back up."))


def _find(error: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    """The error of `kind` in `error`'s chain (causes and contexts), stopping at one already explained."""
    for link in _chain(error):
        if isinstance(link, kind):
            return link
    return None


def _find_lost(error: BaseException | None) -> BaseException | None:
    """In the course's own setup code a connection that trips over its state after a crash ("another
    operation is in progress") is broken too; in a learner's cell, only `is_lost`.  Any other
    InterfaceError (a pool's connection used after its release, say) is a mistake in the code
    that raised it, not a lost connection, and is left to speak for itself."""
    for link in _chain(error):
        if is_lost(link) or (isinstance(link, asyncpg.InterfaceError) and "another operation is in progress" in str(link)):
            return link
    return None


def _chain(error: BaseException | None) -> list[BaseException]:
    links: list[BaseException] = []
    while error is not None and len(links) < 10 and not (links and isinstance(error, CourseError)):
        links.append(error)
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return links


def is_lost(error: BaseException) -> bool:
    """asyncpg's ways of saying an open connection broke (a stop, a crash, pg_terminate_backend)."""
    if isinstance(error, ConnectionError) and "SSL" in str(error):
        return False  # the TLS handshake failed: the connection never was (see connect_failure)
    if isinstance(error, (asyncpg.ConnectionDoesNotExistError, asyncpg.AdminShutdownError,
                          asyncpg.CrashShutdownError, asyncpg.CannotConnectNowError, ConnectionError)):
        return True
    return isinstance(error, asyncpg.InterfaceError) and "connection is closed" in str(error)


async def server_state(target: Target, log: str = "") -> str:
    """What the server is doing now, in a sentence: probed, and for the embedded one, read from its log."""
    if target.embedded:
        running = target.server().running()
        if running is None:
            stopped = "database system is shut down" in log or "shutdown request" in log
            return (f"The embedded server in {target.pgdata} is not running now: "
                    + ("it was stopped (its log records the shutdown)." if stopped else
                       "it ended without a shutdown in its log, so it was killed or crashed."))
        crash = re.findall(r"LOG:\s+([^\n]*\(PID \d+\) was terminated by signal [^\n]*|"
                           r"terminating any other active server processes)", log)
        if crash:
            return f"The embedded server crashed and restarted itself (its log: {crash[0]})."
        if "terminating connection due to administrator command" in log:
            return "The embedded server is running: an administrator ended this connection (pg_terminate_backend)."
        return "The embedded server is running again."
    try:
        conn = await asyncpg.connect(target.dsn(), timeout=PROBE_TIMEOUT)
    except (asyncpg.PostgresError, OSError, TimeoutError) as error:
        return f"The server does not take connections now ({type(error).__name__}: {error}): it is down or restarting."
    await conn.close()
    return "The server takes connections again: it restarted, or only this connection was ended."


def _log_since(target: Target, since: int) -> str:
    if target.pgdata is None:
        return ""
    try:
        with target.server().log_file().open("rb") as log:
            log.seek(since)
            return log.read(1_000_000).decode(errors="replace")
    except OSError:
        return ""


def disk_full(target: Target, doing: str, detail: str, *, file: str | None = None, dropped: bool) -> DiskFull:
    """The disk under the server's data (or its WAL) is full: where, how much is free, how much is needed."""
    file = file or next(iter(re.findall(r'file "([^"]+)"', detail)), None)
    needed = TEMPLATE_MB + BUILD_WAL_MB
    copy = "The half-built copy has been dropped." if dropped else "The half-built copy is dropped on the next try."
    if target.pgdata is not None:
        written = _real_path(target.pgdata / file) if file else target.pgdata
        free = shutil.disk_usage(_existing(written)).free // 1_000_000
        return DiskFull(
            f"The disk mounted at {_mount_point(written)} is full: the embedded server (data directory "
            f"{target.pgdata}) could not write {written} while {doing} ({detail}). {copy}",
            f"free at least {needed} MB on that disk (it has {free} MB free now): the template takes about "
            f"{TEMPLATE_MB} MB and its build writes about {BUILD_WAL_MB} MB of WAL; each notebook's database takes "
            f"about {TEMPLATE_MB} MB more. Then run the cell (or command) again.")
    return DiskFull(
        f"The disk of {target.label()} is full: PostgreSQL could not write while {doing} ({detail}). {copy}",
        f"ask the server's owner to free at least {needed} MB on the disk of its data directory (the template "
        f"takes about {TEMPLATE_MB} MB and its build writes about {BUILD_WAL_MB} MB of WAL; each notebook's "
        f"database about {TEMPLATE_MB} MB more), then run the cell again.")


def _real_path(path: Path) -> Path:
    """Where a server file really is (a tablespace's files are behind a symlink in pg_tblspc)."""
    return Path(os.path.realpath(path))


def _mount_point(path: Path) -> Path:
    path = _existing(path)
    while path != path.parent and os.stat(path.parent).st_dev == os.stat(path).st_dev:
        path = path.parent
    return path


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# -- privileges ------------------------------------------------------------------------------
async def no_privilege(error: BaseException, target: Target, doing: str) -> NoPrivilege:
    """What the role may not do, and the SQL an instructor (or superuser) runs to allow it."""
    role = urlsplit(target.dsn()).username or "?"
    message = str(error)
    if "permission denied to create database" in message:
        return NoPrivilege(
            f"The role {role!r} of {target.label()} may not create databases (it lacks CREATEDB), which every "
            f"notebook's setup cell needs: it failed while {doing}.",
            f"ask the server's owner (a superuser) to run: ALTER ROLE {ident(role)} CREATEDB;")
    owned = re.search(r'must be owner of database "?([^"\s]+)"?', message)
    if owned:
        name = owned.group(1)
        owner, is_template = await _database_owner(target, name)
        steps = (f"ALTER DATABASE {ident(name)} IS_TEMPLATE false; DROP DATABASE {ident(name)};" if is_template
                 else f"ALTER DATABASE {ident(name)} OWNER TO {ident(role)};")
        return NoPrivilege(
            f"The database {name} belongs to the role {owner!r}, not to {role!r} (the role in use on "
            f"{target.label()}), so {role!r} cannot drop or re-create it while {doing}.",
            f"ask {owner!r} or a superuser to run: {steps} Then run the cell again"
            + (f" (it builds the template as {role!r})." if is_template else "."))
    table = re.search(r"permission denied for (?:table|sequence|schema) (\S+)", message)
    if table:
        template = target.template()
        builder, _ = await _database_owner(target, template)
        return NoPrivilege(
            f"The role {role!r} may not read {table.group(1)} in its copy of {template} ({message}): the template "
            f"was built by the role {builder!r}, and its tables belong to that role in every copy.",
            f"have the template rebuilt as {role!r}: ask {builder!r} or a superuser to run: ALTER DATABASE "
            f"{ident(template)} IS_TEMPLATE false; DROP DATABASE {ident(template)}; Then run the setup cell "
            f"again (it builds the template as {role!r}).")
    return NoPrivilege(f"The role {role!r} lacks a privilege on {target.label()} needed while {doing}: {message}.",
                       "ask the server's owner to grant it (the error above names the object).")


async def _database_owner(target: Target, name: str) -> tuple[str, bool]:
    with contextlib.suppress(asyncpg.PostgresError, OSError, TimeoutError):
        conn = await asyncpg.connect(target.dsn(), timeout=PROBE_TIMEOUT)
        try:
            row = await conn.fetchrow("SELECT pg_get_userbyid(datdba) AS owner, datistemplate FROM pg_database "
                                      "WHERE datname = $1", name)
        finally:
            await conn.close()
        if row is not None:
            return row["owner"], row["datistemplate"]
    return "its owner", False


def ident(name: str) -> str:
    """`name` as an SQL identifier, quoted only when it must be."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


# -- a learner's own cell ----------------------------------------------------------------------
def cell_hint(error: BaseException) -> str | None:
    """A paragraph to show under an error raised in a notebook cell, or None to show the error alone.

    Only connection troubles get one (out of connections, a connection that broke, a server that
    is not there, an interrupted cell): they are not the learner's code, and the error alone does
    not say what to do.  Errors a notebook demonstrates on purpose get none.
    """
    if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
        return _interrupted(error)
    if isinstance(error, asyncpg.TooManyConnectionsError) or (_from_asyncpg(error) and (is_lost(error)
                                                                                     or _refused(error))):
        try:
            target = resolve()
        except CourseError:
            return None
        explained = _in_thread(lambda: _explain_cell_error(error, target))
        return str(explained) if explained else None
    return None


async def _explain_cell_error(error: BaseException, target: Target) -> CourseError | None:
    if isinstance(error, asyncpg.TooManyConnectionsError):
        return await out_of_connections(error, target)
    state = await server_state(target, _log_tail(target))
    if _refused(error):
        return ServerError(f"No server is listening at this DSN now. {state}",
                           "run the notebook's setup cell again (it starts the embedded server if it is "
                           "down), then the cell that connects.")
    return ConnectionLost(
        f"This connection to the server is gone: {state}",
        "run the notebook's setup cell again (it starts the embedded server if it is down and makes the "
        "notebook's database afresh), then the cell that connects (`asyncpg.connect` or `create_pool`).")


def _log_tail(target: Target) -> str:
    if target.pgdata is None:
        return ""
    size = log_offset(target)
    return _log_since(target, max(0, size - 20_000))


def _from_asyncpg(error: BaseException) -> bool:
    """Raised (or awaited) inside asyncpg: a missing file or a reset elsewhere is none of our business."""
    return any("asyncpg" in Path(frame.f_code.co_filename).parts for frame, _ in traceback.walk_tb(error.__traceback__))


def _interrupted(error: BaseException) -> str:
    if not _from_asyncpg(error):
        return "The cell was interrupted. Run it again to redo its work."
    return ("The cell was interrupted while asyncpg waited for the server: asyncpg asked the server to cancel "
            "that statement, and the connection is usable again as soon as the server confirms (a transaction "
            "of `async with conn.transaction()` is rolled back). Should it be closed instead (`conn.is_closed()`), "
            "run the cell that connects again; then run this cell again.")


def _in_thread(work: Callable[[], Coroutine[Any, Any, CourseError | None]]) -> CourseError | None:
    """Run a coroutine function on an event loop of its own: the kernel's loop is busy showing the error."""
    result: list[CourseError | None] = [None]

    def run() -> None:
        with contextlib.suppress(Exception):
            result[0] = asyncio.run(work())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT * 2 + 1)
    return result[0]
