"""Where the course's server is, and connecting to it with a clear answer when that fails.

`DATABASE_URL` set: that server.  Not set: the embedded one, started on first use.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from . import config
from .errors import ConfigError, ServerError
from .server import EmbeddedServer

CONNECT_TIMEOUT = 5.0


def embedded_server() -> EmbeddedServer:
    return EmbeddedServer(config.pgdata_dir())


def server_dsn(database: str = "postgres") -> str:
    """The DSN of `database` on the course's server, starting the embedded server if it is the one."""
    url = config.database_url()
    if url is None:
        server = embedded_server()
        server.start()
        return server.dsn(database)
    return with_database(url, database)


def with_database(url: str, database: str) -> str:
    """The same server and credentials as `url`, another database."""
    parts = _parse(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def describe(dsn: str) -> str:
    """The DSN with its password hidden, for messages and `db status`."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _parse(url: str):  # -> SplitResult
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None  # type: ignore[assignment]
    if parts is None or parts.scheme not in ("postgres", "postgresql") or not (parts.hostname or "host=" in url):
        raise ConfigError(
            f"DATABASE_URL is not a PostgreSQL URL: {describe(url)!r}.",
            "use the form postgresql://USER:PASSWORD@HOST:PORT/DATABASE, "
            "e.g. postgresql://course:course@127.0.0.1:55432/postgres, or unset it to use the embedded server.",
        )
    return parts


async def connect(dsn: str, **kwargs: object) -> asyncpg.Connection:
    """`asyncpg.connect` with a timeout and a one-paragraph answer for each way it can fail."""
    if config.database_url() is not None:
        _parse(dsn)
    where = describe(dsn)
    try:
        return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT, **kwargs)  # type: ignore[arg-type]
    except asyncpg.InvalidPasswordError:
        raise ServerError(f"The server at {where} refused the password.",
                          "check the user and password in DATABASE_URL.") from None
    except asyncpg.InvalidAuthorizationSpecificationError as error:
        raise ServerError(f"The server at {where} refused the login: {error}.",
                          "check the user name in DATABASE_URL, or ask the server's owner for a role.") from None
    except asyncpg.InvalidCatalogNameError:
        raise ServerError(f"The database in {where} does not exist.",
                          "create it, or run `python -m helpers db reset` to rebuild the course's databases.") from None
    except asyncpg.CannotConnectNowError as error:
        raise ServerError(f"The server at {where} is not accepting connections now ({error}): "
                          "it is starting up, shutting down or in recovery.",
                          "wait a few seconds and run the cell again; `python -m helpers db status` tells when it is up.") from None
    except (ConnectionRefusedError, FileNotFoundError, socket.gaierror) as error:
        raise ServerError(f"No PostgreSQL server is listening at {where} ({error.strerror or error}).",
                          _start_advice()) from None
    except (asyncio.TimeoutError, TimeoutError):
        raise ServerError(f"The server at {where} did not answer within {CONNECT_TIMEOUT:.0f} s.",
                          "check that the host and port in DATABASE_URL are right and reachable. " + _start_advice()) from None
    except OSError as error:
        raise ServerError(f"Could not reach {where}: {error}.", _start_advice()) from None
    except ValueError as error:
        raise ConfigError(f"The DSN {where!r} cannot be used: {error}.",
                          "fix DATABASE_URL (postgresql://USER:PASSWORD@HOST:PORT/DATABASE).") from None


def _start_advice() -> str:
    if config.database_url() is None:
        return "start the embedded server with `python -m helpers db start`."
    return ("start that server (with docker compose: `docker compose up -d`), "
            "or unset DATABASE_URL to use the embedded server.")


LEARNER_ROLE = "course_learner"
LEARNER_PASSWORD = "learner"  # a documented local development password, not a secret


async def learner_dsn(database: str, password: str = LEARNER_PASSWORD) -> str:
    """A DSN that logs in as `course_learner` with `password`, for showing what a wrong one does.

    The role (password `learner`) is created or reset on the course's server, embedded or
    not; a server role without the right to create roles gets a message saying what to ask for.
    """
    admin = await connect(server_dsn())
    try:
        await _ensure_learner_role(admin)
    finally:
        await admin.close()
    parts = urlsplit(server_dsn(database))
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{LEARNER_ROLE}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


async def _ensure_learner_role(admin: asyncpg.Connection) -> None:
    exists = await admin.fetchval("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", LEARNER_ROLE)
    # CREATE/ALTER ROLE take no $-parameters; format() quotes the name and password on the server.
    statement = await admin.fetchval("SELECT format($1, $2::text, $3::text)",
                                     "ALTER ROLE %I LOGIN PASSWORD %L" if exists else "CREATE ROLE %I LOGIN PASSWORD %L",
                                     LEARNER_ROLE, LEARNER_PASSWORD)
    try:
        await admin.execute(statement)
    except asyncpg.InsufficientPrivilegeError:
        if exists:
            return  # someone with the right made it; trust its password is the documented one
        raise ServerError(
            f"The role in DATABASE_URL may not create roles, and the role {LEARNER_ROLE!r} does not exist.",
            f"ask the server's owner to run: CREATE ROLE {LEARNER_ROLE} LOGIN PASSWORD '{LEARNER_PASSWORD}';",
        ) from None
