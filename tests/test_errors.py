"""Bad input and faults get one clear paragraph within seconds, from the library and the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from helpers import ConfigError, CourseError, ServerError, connect, drop_course_databases, names, notebook_database, server_dsn
from helpers.server import EmbeddedServer, binary
from helpers.target import resolve
from tests.conftest import TCP_PASSWORD, free_port, value

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


def test_server_shutting_down(tcp_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A smart shutdown waits for open sessions; meanwhile new connections are turned away."""
    scratch = EmbeddedServer(tcp_server.pgdata.parent / "closing", port=free_port(), password=TCP_PASSWORD)
    scratch.start()

    async def scenario() -> None:
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

    asyncio.run(scenario())
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
