"""A password never leaves the process: not on a child's command line, not in any printed or stored DSN.

A loopback server with a known password; the course runs psql and pgbench against it, prints
its status and doctor, raises its errors and runs a notebook, and every trace of the password
is looked for: in /proc/*/cmdline while the children run, in what the commands print, in the
notebook's stored outputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import asyncpg
import nbformat
import pytest
from nbclient import NotebookClient

from helpers.admin import cli
from helpers.connection import connect
from helpers.dsn import for_child, mask
from helpers.errors import ConfigError, ServerError
from helpers.maintainers.bench.pgbench import Pgbench
from helpers.schema import create_schema
from helpers.server import EmbeddedServer
from tests.conftest import ROOT, password_server

PASSWORD = "Zq7 s3cr#t@pw"  # a space, a "#" and an "@": each needs percent-encoding in a URL
TRACES = (PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD), "s3cr")


@pytest.fixture(scope="module")
def secret_server() -> Iterator[EmbeddedServer]:
    with password_server("secret", PASSWORD) as server:
        yield server


def url_forms(server: EmbeddedServer, database: str = "postgres") -> dict[str, str]:
    """The password in the userinfo and as a query parameter (both valid), and unencoded (unparsable)."""
    host = f"127.0.0.1:{server.port}"
    return {"userinfo": f"postgresql://postgres:{quote(PASSWORD, safe='')}@{host}/{database}",
            "query": f"postgresql://postgres@{host}/{database}?password={quote(PASSWORD, safe='')}&sslmode=disable",
            "unparsable": f"postgresql://postgres:{PASSWORD}@{host}/{database}"}


def assert_no_trace(text: str, where: str) -> None:
    for trace in TRACES:
        assert trace not in text, f"{where} shows the password ({trace!r}):\n{text}"


def test_mask_hides_every_form_of_a_password() -> None:
    server = EmbeddedServer(Path("/nonexistent"), port=5432, password=PASSWORD)
    for form, url in url_forms(server).items():
        masked = mask(url)
        assert_no_trace(masked, form)
        assert masked.startswith("postgresql://postgres") and "***" in masked, masked
    assert mask("host=h user=u password='a b c' dbname=d") == "host=h user=u password=*** dbname=d"
    assert mask("postgresql://u@h/db?sslpassword=k3y") == "postgresql://u@h/db?sslpassword=***"
    plain = "postgresql://u@/db?host=%2Ftmp%2Fa%20b&port=5432"
    assert mask(plain) == plain  # nothing to hide: unchanged


def test_for_child_moves_the_password_into_the_environment() -> None:
    server = EmbeddedServer(Path("/nonexistent"), port=5432, password=PASSWORD)
    forms = url_forms(server)
    for form in ("userinfo", "query"):
        dsn, env = for_child(forms[form])
        assert env == {"PGPASSWORD": PASSWORD}
        assert_no_trace(dsn, form)
    assert for_child("postgresql://u@/db?host=%2Ftmp%2Fa%20b") == ("postgresql://u@/db?host=%2Ftmp%2Fa%20b", {})
    with pytest.raises(ConfigError, match="percent-encode") as info:
        for_child(forms["unparsable"])
    assert_no_trace(str(info.value), "the refusal")


def cmdlines() -> str:
    """Every process's command line on the machine, as another user would read it."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):  # a process that has just exited
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return "\n".join(found)


class CmdlineWatch:
    """Reads /proc/*/cmdline over and over while a child runs; keeps what named `needle`."""

    def __init__(self, needle: str) -> None:
        self.needle, self.seen, self.hits = needle, 0, []  # type: ignore[var-annotated]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            lines = cmdlines().splitlines()
            self.seen += sum(self.needle in line for line in lines)
            self.hits += [line for line in lines if any(trace in line for trace in TRACES)]
            time.sleep(0.05)

    def __enter__(self) -> CmdlineWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def course(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_psql_through_the_course_gets_the_password_by_environment(secret_server: EmbeddedServer, form: str) -> None:
    env = {"DATABASE_URL": url_forms(secret_server)[form], "COURSE_DB_PREFIX": f"secret_{form}"}
    with CmdlineWatch("pg_sleep") as watch:
        result = course("db", "psql", "postgres", "-Atc", "SELECT 'in:' || pg_sleep(1.5)::text", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "in:"  # logged in: the password arrived
    assert watch.seen > 0, "never saw psql run: the check would prove nothing"
    assert not watch.hits, watch.hits
    assert_no_trace(result.stdout + result.stderr, "db psql")


def test_pgbench_gets_the_password_by_environment(secret_server: EmbeddedServer) -> None:
    async def schema() -> None:
        conn = await asyncpg.connect(secret_server.dsn())
        try:
            await conn.execute("DROP DATABASE IF EXISTS secret_bench")
            await conn.execute("CREATE DATABASE secret_bench")
        finally:
            await conn.close()
        conn = await asyncpg.connect(secret_server.dsn("secret_bench"))
        try:
            await create_schema(conn)
        finally:
            await conn.close()

    asyncio.run(schema())
    for form in ("userinfo", "query"):
        with Pgbench(url_forms(secret_server, "secret_bench")[form], 1) as bench, CmdlineWatch("pgbench") as watch:
            measured = asyncio.run(bench.run("fetch", 2, seconds=1))
        assert measured.queries > 0
        assert watch.seen > 0 and not watch.hits, watch.hits


@pytest.mark.parametrize("form", ["userinfo", "query", "unparsable"])
def test_status_doctor_and_errors_mask_the_password(secret_server: EmbeddedServer, form: str,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The commands in this process (quicker than a child each): what they print is what a learner sees."""
    monkeypatch.setenv("DATABASE_URL", url_forms(secret_server)[form])
    monkeypatch.setenv("COURSE_DB_PREFIX", f"secret_{form}")
    for args in (["db", "status"], ["doctor"], ["db", "url"], ["db", "psql", "no_such_notebook", "-c", "SELECT 1"]):
        cli.main(args)
        printed = capsys.readouterr()
        assert "Traceback" not in printed.err, printed.err
        assert_no_trace(printed.out + printed.err, " ".join(args))
    if form != "unparsable":
        with pytest.raises(ServerError, match="does not exist") as info:
            asyncio.run(connect(url_forms(secret_server, "no_such_database")[form]))
        assert_no_trace(str(info.value), "a connect error")


@pytest.mark.slow
def test_a_notebook_run_against_a_password_url_stores_no_password(secret_server: EmbeddedServer, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Notebook 01 (it prints servers, DSNs and errors) with DATABASE_URL holding the password, plus
    a cell whose connection fails; the saved outputs must not hold the password."""
    monkeypatch.setenv("DATABASE_URL", url_forms(secret_server)["userinfo"])
    monkeypatch.setenv("COURSE_DB_PREFIX", "secret_nb")
    notebook = nbformat.read(ROOT / "notebooks" / "01_connect.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import os\nfrom helpers.connection import connect\n"
        "await connect(os.environ['DATABASE_URL'].rsplit('/', 1)[0] + '/no_such_database')"))
    NotebookClient(notebook, kernel_name="asyncpg-course", allow_errors=True, timeout=300,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    saved = tmp_path / "01_connect.ipynb"
    nbformat.write(notebook, saved)
    text = saved.read_text()
    assert "does not exist" in text  # the failing cell ran and its error is stored
    assert_no_trace(text, "the saved notebook")
