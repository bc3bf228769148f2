"""What a class server needs, made by the instructor in one command: `course class setup`.

Connected as an admin role (DATABASE_URL of a superuser or a role with CREATEROLE), it makes:

- the learners' roles: one per learner (`LOGIN CREATEDB`, named by the learner's prefix, a
  random password), so nobody can touch databases they do not own; or, with `--shared-role`,
  one role for the whole class;
- notebook 01's demo role `course_learner`, with a password the instructor chooses
  (COURSE_DEMO_PASSWORD or a prompt, never argv; never the public `learner`), which may log in
  and nothing more: no CREATEDB, no roles, read-only sessions, a connection limit;
- a class file (JSON, readable by its owner only) with the DATABASE_URL of every learner's
  server by hub name and the demo password, which the hub's configuration reads.

`course class prefix NAME…` prints the prefix each learner gets, for names as JupyterHub lists
them (JupyterHub lowercases the names people log in with).
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlunsplit

import asyncpg

from .. import config, names
from ..connection import CLASS_ROLE_COMMENT, LEARNER_PASSWORD, LEARNER_ROLE, connected
from ..errors import ConfigError
from ..target import Target, parse_url

#: Connections the demo role may hold at once: notebook 01 opens one at a time per learner.
DEMO_CONNECTION_LIMIT = 50


def hub_name(name: str) -> str:
    """The name as JupyterHub lists it: its default `normalize_username` lowercases."""
    return name.lower()


def hub_prefix(name: str) -> str:
    """The prefix a learner's server gets from JUPYTERHUB_USER for someone who logs in as `name`."""
    return names.prefix_from_user(hub_name(name))


@dataclass(frozen=True)
class Learner:
    hub_name: str
    role: str
    password: str


def demo_password() -> str:
    """The demo role's password: COURSE_DEMO_PASSWORD, else asked for on the terminal."""
    password = config.demo_password()
    if password is None:
        if not sys.stdin.isatty():
            raise ConfigError(f"No password for the demo role {LEARNER_ROLE!r}.",
                              f"set {config.DEMO_PASSWORD_VAR} in the environment (never on the command line).")
        password = getpass.getpass(f"password for {LEARNER_ROLE} (notebook 01's demo; learners will see it): ")
    if password in ("", LEARNER_PASSWORD):
        raise ConfigError(f"The demo role's password may not be {password!r} on a class server: "
                          f"`{LEARNER_PASSWORD}` is the course's public password.",
                          f"choose another one in {config.DEMO_PASSWORD_VAR}.")
    return password


async def setup(target: Target, learners: list[str], shared_role: str | None, out: Path) -> list[Learner]:
    """Make the roles and write the class file; rerunning it resets every password it made."""
    if target.embedded:
        raise ConfigError("DATABASE_URL is not set: `course class setup` sets up a class server.",
                          "set DATABASE_URL to an admin role on the class server (a superuser or CREATEROLE).")
    chosen = demo_password()
    shared_password = secrets.token_urlsafe(18)
    made = [Learner(hub_name(name), shared_role or hub_prefix(name),
                    shared_password if shared_role else secrets.token_urlsafe(18)) for name in learners]
    async with connected(target.dsn()) as conn, conn.transaction():
        for role in {(one.role, one.password) for one in made}:
            await _role(conn, *role, "LOGIN CREATEDB NOSUPERUSER NOCREATEROLE")
        await _role(conn, LEARNER_ROLE, chosen, f"LOGIN NOINHERIT NOCREATEDB NOCREATEROLE CONNECTION LIMIT {DEMO_CONNECTION_LIMIT}")
        await _ddl(conn, "ALTER ROLE %I SET default_transaction_read_only = on", LEARNER_ROLE)
        await _ddl(conn, "COMMENT ON ROLE %I IS %L", LEARNER_ROLE, CLASS_ROLE_COMMENT)
        await _admit_only_learners(conn, target, sorted({one.role for one in made}))
    _write_class_file(out, target, made, chosen)
    return made


async def _admit_only_learners(conn: asyncpg.Connection, target: Target, roles: list[str]) -> None:
    """The maintenance database (the learners' setup cells start there) admits the learners, not the demo role.

    The learners' own databases admit only their owner (`helpers.databases`), and 01's the
    demo role too (`learner_dsn`), so the demo role can log in nowhere else.  Only the
    maintenance database's owner (or a superuser) may change who connects to it.
    """
    maintenance = parse_url(target.dsn()).path.lstrip("/") or "postgres"
    try:
        async with conn.transaction():
            await _ddl(conn, "REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC", maintenance)
            for role in roles:
                await _ddl(conn, "GRANT CONNECT ON DATABASE %I TO %I", maintenance, role)
    except asyncpg.InsufficientPrivilegeError:
        print(f"note: {maintenance} still admits every role (only its owner may change that): "
              f"the demo role {LEARNER_ROLE} can log in there too, read-only", file=sys.stderr)


async def _role(conn: asyncpg.Connection, role: str, password: str, options: str) -> None:
    exists = await conn.fetchval("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", role)
    await _ddl(conn, f"{'ALTER' if exists else 'CREATE'} ROLE %I {options} PASSWORD %L", role, password)


async def _ddl(conn: asyncpg.Connection, statement: str, *values: str) -> None:
    """Role DDL takes no $-parameters: the server's format() quotes names (%I) and passwords (%L)."""
    placeholders = ", ".join(f"${i}::text" for i in range(2, len(values) + 2))
    await conn.execute(await conn.fetchval(f"SELECT format($1, {placeholders})", statement, *values))


def learner_url(target: Target, learner: Learner) -> str:
    """The admin URL with the learner's role and password: same host, port and options."""
    parts = parse_url(target.dsn())
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(learner.role, safe='')}:{quote(learner.password, safe='')}@{host}"))


def learner_target(target: Target, learner: Learner) -> Target:
    """The class server as that learner's server sees it: their role, their prefix."""
    return Target(url=learner_url(target, learner), pgdata=None, prefix=names.prefix_from_user(learner.hub_name),
                  prefix_source=f"JUPYTERHUB_USER={learner.hub_name!r}")


def _write_class_file(out: Path, target: Target, learners: list[Learner], demo: str) -> None:
    data = {
        "demo_password": demo,
        "learners": {one.hub_name: {"role": one.role, "prefix": names.prefix_from_user(one.hub_name),
                                    "database_url": learner_url(target, one)} for one in learners},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w") as file:
        json.dump(data, file, indent=2)
