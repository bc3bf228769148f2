"""Bad input and faults get one clear paragraph within seconds, from the library and the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from helpers import ConfigError, CourseError, ServerError, connect, drop_course_databases, names, notebook_database, server_dsn
from helpers.databases import ensure_template
from helpers.server import EmbeddedServer, binary
from helpers.target import resolve
from helpers.tracebacks import short_traceback
from tests.conftest import TCP_PASSWORD, free_port, query, server_directory, value
from tests.test_faults import until_closed

BOUND = 10.0


def raises_quickly(kind: type[CourseError], match: str, action: Callable[[], object]) -> CourseError:
    started = time.monotonic()
    with pytest.raises(kind, match=match) as info:
        action()
    assert time.monotonic() - started < BOUND
    assert "What to do:" in str(info.value)
    return info.value


@pytest.mark.parametrize("url", ["mysql://u:p@127.0.0.1:3306/db", "postgresql://u:p@127.0.0.1:port/db",
                                 "just some words", "postgresql://"])
def test_malformed_database_url(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    raises_quickly(ConfigError, "DATABASE_URL is not a PostgreSQL URL", server_dsn)


def test_wrong_password(tcp_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", tcp_server.dsn().replace(TCP_PASSWORD, "wrong"))
    error = raises_quickly(ServerError, "refused the password", lambda: asyncio.run(notebook_database("x")))
    assert "wrong" not in str(error)  # the password is never echoed


def test_nothing_listening(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u:p@127.0.0.1:{free_port()}/postgres")
    error = raises_quickly(ServerError, "No PostgreSQL server is listening",
                           lambda: asyncio.run(connect(server_dsn())))
    assert "docker compose up -d" in str(error)


def test_unroutable_host_times_out_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@no-such-host.invalid:5432/postgres")
    raises_quickly(ServerError, "no-such-host.invalid", lambda: asyncio.run(connect(server_dsn())))


async def test_server_shutting_down(tcp_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A smart shutdown waits for open sessions; meanwhile new connections are turned away."""
    scratch = EmbeddedServer(tcp_server.pgdata.parent / "closing", port=free_port(), password=TCP_PASSWORD)
    scratch.start()

    held = await asyncpg.connect(scratch.dsn())
    try:
        env_user = {"user": "embedded_postgres", "group": "embedded_postgres", "extra_groups": []} \
            if os.geteuid() == 0 else {}
        # blocking on purpose: the held connection must stay open while pg_ctl waits
        subprocess.run([binary("pg_ctl"), "stop", "-D", str(scratch.pgdata), "-m", "smart", "-W"],  # noqa: ASYNC221
                       check=True, capture_output=True, cwd="/", **env_user)
        await asyncio.sleep(0.5)
        monkeypatch.setenv("DATABASE_URL", scratch.dsn())
        # a thread of its own: raises_quickly runs its own event loop
        await asyncio.to_thread(raises_quickly, ServerError, "not accepting connections now",
                                lambda: asyncio.run(connect(server_dsn())))
    finally:
        await held.close()
    scratch.stop()


@pytest.mark.parametrize("bad", ["Alice", "team-3", "1st", "x" * 30, "ünïcode", "team_", "team__3", "_team"])
def test_prefix_a_database_name_cannot_hold(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DB_PREFIX", bad)
    raises_quickly(ConfigError, "cannot be part of a database name", lambda: asyncio.run(notebook_database("x")))


SEEDED_HUB_USER = "Robert'); DROP DATABASE postgres;--"


@pytest.mark.parametrize("hub_user", ["jovyan", "Alice.Smith@example.org", "1st-user", "ünïcode", "x" * 80,
                                      "team__3", SEEDED_HUB_USER, "_"])
def test_jupyterhub_user_is_mapped_to_a_valid_prefix(hub_user: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any JupyterHub name gives a valid prefix and a working database, never an SQL error.

    One name also gets the seeded template and a clone of it (the names the mapping gives are
    all of one alphabet, so one build proves the template's name for all, in seconds less)."""
    monkeypatch.delenv("COURSE_DB_PREFIX", raising=False)
    monkeypatch.setenv("JUPYTERHUB_USER", hub_user)
    target = resolve()
    assert target.prefix == names.check_prefix(target.prefix)
    assert target.prefix_source == f"JUPYTERHUB_USER={hub_user!r}"
    if hub_user == "jovyan":
        assert target.prefix == "jovyan"
    dsn = asyncio.run(notebook_database("hub", seeded=hub_user == SEEDED_HUB_USER))
    try:
        assert value(dsn, "SELECT current_database()") == f"{target.prefix}__hub"
    finally:
        asyncio.run(drop_course_databases())


def test_distinct_hub_users_never_share_a_prefix() -> None:
    users = ["Alice.Smith", "alice_smith", "alice-smith", "ALICE_SMITH", "alice smith", "x" * 40, "x" * 41]
    prefixes = [names.prefix_from_user(user) for user in users]
    assert prefixes[1] == "alice_smith"
    assert len(set(prefixes)) == len(users) - 1  # "alice_smith" and "ALICE_SMITH" are one JupyterHub user
    assert all(names.check_prefix(p) == p for p in prefixes)


@pytest.mark.parametrize("short, long", [("team", "team_3"), ("a", "a_b"), ("x1", "x1_x1")])
def test_a_prefix_that_begins_another_owns_none_of_its_names(short: str, long: str) -> None:
    for suffix in ("04_connection_pools", names.TEMPLATE_SUFFIX, names.BUILD_SUFFIX, "3_04_x"):
        assert names.owner(names._join(long, suffix)) == long
        assert names.owner(names._join(short, suffix)) == short
        assert not names._join(long, suffix).startswith(names.owned_pattern(short))


def test_jupyter_shows_only_the_paragraph() -> None:
    error = ServerError("It broke.", "fix it.")
    assert error._render_traceback_() == ["\x1b[31mServerError\x1b[0m: It broke.\nWhat to do: fix it."]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_cli_status_reports_a_bad_url_without_traceback() -> None:
    result = cli("db", "status", env={"DATABASE_URL": f"postgresql://u:p@127.0.0.1:{free_port()}/postgres"})
    assert result.returncode == 1
    assert "No PostgreSQL server is listening" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_status_url_and_psql_on_the_embedded_server() -> None:
    embedded = {"DATABASE_URL": ""}  # empty counts as unset, also when the suite runs against another server
    status = cli("db", "status", env={**embedded, "JUPYTERHUB_USER": "Ada Lovelace", "COURSE_DB_PREFIX": ""})
    assert status.returncode == 0, status.stderr
    assert "version:   18." in status.stdout
    assert "server:    the embedded server in" in status.stdout
    assert f"prefix:    {names.prefix_from_user('Ada Lovelace')} (from JUPYTERHUB_USER='Ada Lovelace')" in status.stdout
    dsn = cli("db", "url", env=embedded).stdout.strip().splitlines()[-1]
    out = subprocess.run([binary("psql"), dsn, "-Atc", "SELECT current_database()"], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "postgres"
    assert value(dsn, "SELECT current_database()") == "postgres"



def test_everything_works_through_database_url(via_url: str) -> None:
    """The class-server path: TCP on loopback, password authentication, the same helpers."""
    dsn = asyncio.run(notebook_database("over_tcp"))
    assert dsn.startswith("postgresql://postgres:") and "127.0.0.1" in dsn
    assert value(dsn, "SELECT count(*) FROM sku") == 100_000
    status = cli("db", "status")
    assert status.returncode == 0 and "DATABASE_URL" in status.stdout and TCP_PASSWORD not in status.stdout
    from helpers import learner_dsn

    with pytest.raises(asyncpg.InvalidPasswordError):
        value(asyncio.run(learner_dsn("postgres", password="wrong")), "SELECT current_user")
    assert value(asyncio.run(learner_dsn("postgres")), "SELECT current_user") == "course_learner"



def test_cli_psql_passes_arguments_and_explains_a_missing_database(prefix: str) -> None:
    missing = cli("db", "psql", "01_connect", "-c", "select 1")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert f"The database {prefix}__01_connect does not exist yet" in missing.stderr
    assert "run its setup cell" in missing.stderr and "FATAL" not in missing.stderr
    asyncio.run(notebook_database("01_connect"))
    result = cli("db", "psql", "01_connect", "-Atc", "SELECT count(*) FROM brand")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "100"
    assert cli("db", "psql", "postgres", "-Atc", "SELECT 41 + 1").stdout.strip() == "42"


def test_course_script_and_doctor() -> None:
    script = Path(sys.executable).with_name("course")
    result = subprocess.run([str(script), "doctor"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:5]] == [["OK", "python"], ["OK", "packages"], ["OK", "kernel"],
                                                         ["OK", "server"], ["OK", "template"]]


def test_doctor_says_what_to_do_when_the_server_is_unreachable() -> None:
    result = cli("doctor", env={"DATABASE_URL": f"postgresql://u:p@127.0.0.1:{free_port()}/postgres"})
    assert result.returncode == 1
    server_line = next(line for line in result.stdout.splitlines() if line.split()[1:2] == ["server"])
    assert server_line.startswith("FAIL") and "What to do:" in server_line and "docker compose" in server_line


# -- down, unreachable, TLS ----------------------------------------------------------------
def test_a_server_that_is_down_is_down_on_every_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed port (Docker not started): the setup cell and `course db start` say so, not "lost"."""
    url = f"postgresql://u:secret@127.0.0.1:{free_port()}/postgres"
    monkeypatch.setenv("DATABASE_URL", url)
    error = raises_quickly(ServerError, "No PostgreSQL server is listening at postgresql://u:\\*\\*\\*@127.0.0.1",
                           lambda: asyncio.run(notebook_database("down")))
    assert "lost" not in str(error) and "(connection refused)" in str(error) and "secret" not in str(error)
    started = cli("db", "start", env={"DATABASE_URL": url})
    assert started.returncode == 1 and "server ready" not in started.stdout
    assert started.stderr.startswith("error: No PostgreSQL server is listening"), started.stderr
    localhost = cli("db", "start", env={"DATABASE_URL": url.replace("127.0.0.1", "localhost")})
    assert "No PostgreSQL server is listening" in localhost.stderr  # both addresses refused: still "down"


def test_a_host_that_never_answers_is_unreachable_not_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """A port that accepts TCP but never speaks (a hung server, a black-holing middlebox)."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("DATABASE_URL", f"postgresql://u:p@127.0.0.1:{silent.getsockname()[1]}/postgres")
        error = raises_quickly(ServerError, "Nothing at .* answered within 5 s",
                               lambda: asyncio.run(notebook_database("silent")))
    assert "unreachable" in str(error) and "lost" not in str(error)


def test_tls_asked_of_a_server_without_it(tcp_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded binaries have no TLS: sslmode=require, in the URL or in PGSSLMODE, is named as the cause."""
    monkeypatch.setenv("DATABASE_URL", tcp_server.dsn() + "?sslmode=require")
    error = raises_quickly(ServerError, "does not offer TLS", lambda: asyncio.run(notebook_database("tls")))
    assert "sslmode=require (from the DSN)" in str(error) and "lost" not in str(error)
    monkeypatch.setenv("DATABASE_URL", tcp_server.dsn())
    monkeypatch.setenv("PGSSLMODE", "require")
    error = raises_quickly(ServerError, "does not offer TLS", lambda: asyncio.run(notebook_database("tls")))
    assert "from the environment variable PGSSLMODE" in str(error)


def test_pgsslmode_require_does_not_break_the_embedded_server(scratch_server: EmbeddedServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Over its Unix socket TLS does not apply: the server starts and the notebooks work (it used to be
    reported as "the data directory is locked by a PostgreSQL server … kill N")."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("COURSE_PGDATA", str(scratch_server.pgdata))
    monkeypatch.setenv("PGSSLMODE", "require")
    started = time.monotonic()
    dsn = asyncio.run(notebook_database("ssl_env", seeded=False))
    assert time.monotonic() - started < BOUND
    assert value(dsn, "SELECT current_database()").endswith("__ssl_env")


# -- roles ---------------------------------------------------------------------------------
@pytest.fixture
def role_on_tcp(tcp_server: EmbeddedServer, prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """Make a login role on the TCP server (as its superuser) and point DATABASE_URL at it; dropped afterwards."""
    made: list[str] = []

    def make(*attributes: str) -> str:
        role = f"r_{os.urandom(3).hex()}"
        query(tcp_server.dsn(), f"CREATE ROLE {role} LOGIN PASSWORD 'pw' {' '.join(attributes)}")
        made.append(role)
        url = tcp_server.dsn().replace(f"postgres:{TCP_PASSWORD}@", f"{role}:pw@")
        monkeypatch.setenv("DATABASE_URL", url)
        return role

    yield make
    monkeypatch.setenv("DATABASE_URL", tcp_server.dsn())
    asyncio.run(drop_course_databases())
    for role in made:
        query(tcp_server.dsn(), f"DROP OWNED BY {role}")
        query(tcp_server.dsn(), f"DROP ROLE {role}")


def advised_sql(error: CourseError) -> str:
    return error.todo.split("run: ", 1)[1].split(" Then ", 1)[0]


def run_as_superuser(server: EmbeddedServer, sql: str) -> None:
    for statement in filter(None, (part.strip() for part in sql.split(";"))):
        query(server.dsn(), statement)


def test_a_role_without_createdb(tcp_server: EmbeddedServer, role_on_tcp: Callable[..., str]) -> None:
    role = role_on_tcp()
    error = raises_quickly(ServerError, f"The role '{role}' .* may not create databases",
                           lambda: asyncio.run(notebook_database("x", seeded=False)))
    assert advised_sql(error) == f"ALTER ROLE {role} CREATEDB;"
    run_as_superuser(tcp_server, advised_sql(error))  # the advice, taken literally, is enough
    asyncio.run(notebook_database("x", seeded=False))


def test_a_database_of_the_prefix_owned_by_another_role(tcp_server: EmbeddedServer, prefix: str,
                                                        role_on_tcp: Callable[..., str]) -> None:
    query(tcp_server.dsn(), f"CREATE DATABASE {prefix}__x")  # made by the superuser, e.g. a pre-class script
    role = role_on_tcp("CREATEDB")
    error = raises_quickly(ServerError, f"The database {prefix}__x belongs to the role 'postgres', not to '{role}'",
                           lambda: asyncio.run(notebook_database("x", seeded=False)))
    assert advised_sql(error) == f"ALTER DATABASE {prefix}__x OWNER TO {role};"
    run_as_superuser(tcp_server, advised_sql(error))
    asyncio.run(notebook_database("x", seeded=False))


def test_a_template_built_by_another_role(tcp_server: EmbeddedServer, prefix: str,
                                          role_on_tcp: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The instructor pre-built the learner's template as the superuser: its tables are the superuser's
    in every clone, so the learner's role may not read them."""
    monkeypatch.setenv("DATABASE_URL", tcp_server.dsn())
    asyncio.run(ensure_template())
    role = role_on_tcp("CREATEDB")
    error = raises_quickly(ServerError, f"The role '{role}' may not read brand in its copy of {prefix}__eshop__template",
                           lambda: asyncio.run(notebook_database("x")))
    assert "built by the role 'postgres'" in str(error)
    assert advised_sql(error) == (f"ALTER DATABASE {prefix}__eshop__template IS_TEMPLATE false; "
                                  f"DROP DATABASE {prefix}__eshop__template;")
    run_as_superuser(tcp_server, advised_sql(error))
    assert value(asyncio.run(notebook_database("x")), "SELECT count(*) FROM sku") == 100_000  # built as the role


# -- out of connections --------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_server() -> Iterator[EmbeddedServer]:
    """A TCP server with 6 connection slots, 2 of them kept for superusers, and a role `learner`."""
    with server_directory("small") as pgdata:
        server = EmbeddedServer(pgdata, port=free_port(), password=TCP_PASSWORD)
        server.start()
        for statement in ("ALTER SYSTEM SET max_connections = 6", "ALTER SYSTEM SET superuser_reserved_connections = 2",
                          "CREATE ROLE learner LOGIN CREATEDB PASSWORD 'pw'"):
            query(server.dsn(), statement)
        server.stop()
        server.start()
        yield server
        server.stop()


def learner_url(server: EmbeddedServer) -> str:
    return server.dsn().replace(f"postgres:{TCP_PASSWORD}@", "learner:pw@")


async def fill(dsn: str) -> list[asyncpg.Connection]:
    """Open connections as `dsn`'s role until the server turns one away."""
    held: list[asyncpg.Connection] = []
    with contextlib.suppress(asyncpg.TooManyConnectionsError):
        while len(held) < 20:
            held.append(await asyncpg.connect(dsn))
    return held


async def test_out_of_connections_in_a_setup_cell(small_server: EmbeddedServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", learner_url(small_server))
    held = await fill(learner_url(small_server))
    try:
        assert len(held) == 4  # 6 slots, 2 kept for superusers
        error = await asyncio.to_thread(raises_quickly, ServerError, "turned a connection away",
                                        lambda: asyncio.run(notebook_database("x", seeded=False)))
    finally:
        await asyncio.gather(*(conn.close() for conn in held))
    text = str(error)
    for needed in ("remaining connection slots are reserved", "max_connections", "superuser_reserved_connections",
                   "up to 17 connections at once (04_connection_pools", "shut down the kernels", "ALTER SYSTEM SET max_connections", "restart"):
        assert needed in text, (needed, text)


async def test_out_of_connections_in_a_learners_own_cell(small_server: EmbeddedServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The learner's own `asyncpg.connect(DSN)` (or create_pool) keeps asyncpg's error, and the short
    traceback adds the course's paragraph; the superuser's reserved slots let it read the real numbers."""
    monkeypatch.setenv("DATABASE_URL", small_server.dsn())

    held = await fill(learner_url(small_server))
    try:
        with pytest.raises(asyncpg.TooManyConnectionsError) as info:
            await asyncpg.create_pool(learner_url(small_server), min_size=1)
        lines = await asyncio.to_thread(short_traceback, {}, info.type, info.value, info.tb)
    finally:
        await asyncio.gather(*(conn.close() for conn in held))
    assert "TooManyConnectionsError" in lines[-2]
    assert lines[-1].startswith("\x1b[1mThe course:\x1b[0m ")
    assert "max_connections = 6, 2 kept for superusers (superuser_reserved_connections); 4 are open now" in lines[-1]


async def test_a_learners_connection_ended_by_the_server(tcp_server: EmbeddedServer, via_url: str) -> None:
    """pg_terminate_backend (an instructor's cleanup, a restart): the server is probed, not guessed at."""
    conn = await asyncpg.connect(via_url)
    other = await asyncpg.connect(via_url)  # stays open: only one connection ends
    await other.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
    await until_closed(conn)
    with pytest.raises(asyncpg.InterfaceError, match="connection is closed") as info:
        await conn.fetchval("SELECT 1")
    await other.close()
    hint = await asyncio.to_thread(lambda: short_traceback({}, info.type, info.value, info.tb)[-1])
    assert "This connection to the server is gone: The server takes connections again: it restarted, or only " \
           "this connection was ended." in hint, hint
    assert "run the notebook's setup cell again" in hint


def test_errors_of_the_learners_own_code_get_no_course_hint(tmp_path: Path) -> None:
    """A missing file or a reset socket elsewhere is not a database connection: asyncpg's frames decide."""
    for error_type, action in ((FileNotFoundError, lambda: (tmp_path / "missing.csv").open()),
                               (ConnectionResetError, lambda: (_ for _ in ()).throw(ConnectionResetError()))):
        with pytest.raises(error_type) as info:
            action()
        lines = short_traceback({}, info.type, info.value, info.tb)
        assert not any("The course:" in line for line in lines), lines
