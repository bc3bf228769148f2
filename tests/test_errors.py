"""Bad input and faults get one clear paragraph within seconds, from the library and the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable

import asyncpg
import pytest

from helpers import ConfigError, CourseError, ServerError, connect, notebook_database, server_dsn
from helpers.server import EmbeddedServer, binary
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
            subprocess.run([binary("pg_ctl"), "stop", "-D", str(scratch.pgdata), "-m", "smart", "-W"],
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


@pytest.mark.parametrize("bad", ["Alice", "team-3", "1st", "x" * 31, "ünïcode"])
def test_prefix_a_database_name_cannot_hold(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DB_PREFIX", bad)
    raises_quickly(ConfigError, "cannot be part of a database name", lambda: asyncio.run(notebook_database("x")))


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
    status = cli("db", "status")
    assert status.returncode == 0, status.stderr
    assert "version:   18." in status.stdout
    dsn = cli("db", "url").stdout.strip().splitlines()[-1]
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

