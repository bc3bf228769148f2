"""The embedded server: start, reuse, stop, crash recovery, concurrent starts, locking."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from helpers.errors import ServerError
from helpers.server import EmbeddedServer, binary, socket_path_fits
from tests.conftest import kill_9, query, server_directory, value


def test_socket_only_server_starts_reuses_and_stops(scratch_server: EmbeddedServer) -> None:
    dsn = scratch_server.start()
    first = scratch_server.running()
    assert first is not None and first.status == "ready"
    assert str(value(dsn, "SHOW server_version")).startswith("18.")
    assert scratch_server.start() == dsn
    assert scratch_server.running().pid == first.pid  # reused, not restarted
    conf = value(dsn, "SHOW listen_addresses")
    assert conf == ""  # no TCP at all
    assert scratch_server.stop() is True
    assert scratch_server.running() is None
    assert scratch_server.stop() is False


def test_tcp_server_listens_on_loopback_only_with_password(tcp_server: EmbeddedServer) -> None:
    assert value(tcp_server.dsn(), "SHOW listen_addresses") == "127.0.0.1"
    wrong = tcp_server.dsn().replace("course-test", "nope")
    with pytest.raises(asyncpg.InvalidPasswordError):
        value(wrong, "SELECT 1")


def test_recovers_after_kill_9(scratch_server: EmbeddedServer) -> None:
    dsn = scratch_server.start()
    query(dsn, "CREATE TABLE kept (x int)")
    query(dsn, "INSERT INTO kept VALUES (42)")
    pid = scratch_server.running().pid
    kill_9(scratch_server)
    assert scratch_server.running() is None  # the stale postmaster.pid is recognised as stale
    started = time.monotonic()
    scratch_server.start()
    assert time.monotonic() - started < 30
    assert scratch_server.running().pid != pid
    assert value(dsn, "SELECT x FROM kept") == 42


def test_pid_file_naming_a_reused_pid_is_stale(scratch_server: EmbeddedServer) -> None:
    """After a crash the old pid may belong to an unrelated process: that is not our server."""
    scratch_server.start()
    scratch_server.stop()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        lines = [str(sleeper.pid), str(scratch_server.pgdata), "0", "5432", str(scratch_server.pgdata),
                 "", "0 0", "ready"]
        (scratch_server.pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")
        scratch_server.start()
        assert scratch_server.running().pid != sleeper.pid
    finally:
        sleeper.kill()


def test_two_concurrent_starts_get_one_server(scratch_server: EmbeddedServer) -> None:
    code = ("import sys; from pathlib import Path; from helpers.server import EmbeddedServer;"
            "s = EmbeddedServer(Path(sys.argv[1])); s.start(); print(s.running().pid)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(scratch_server.pgdata)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], results
    pids = {out.strip() for out, _ in results}
    assert len(pids) == 1
    assert str(scratch_server.running().pid) in pids


def test_data_directory_held_by_an_unresponsive_server(scratch_server: EmbeddedServer) -> None:
    scratch_server.start()
    pid = scratch_server.running().pid
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(ServerError, match="locked by a PostgreSQL server") as info:
            EmbeddedServer(scratch_server.pgdata).start()
        assert time.monotonic() - started < 10
        assert f"kill {pid}" in str(info.value)
    finally:
        os.kill(pid, signal.SIGCONT)


def test_non_data_directory_is_refused(tmp_path) -> None:
    (tmp_path / "pgdata").mkdir()
    (tmp_path / "pgdata" / "notes.txt").write_text("mine")
    with pytest.raises(ServerError, match="not a PostgreSQL data directory"):
        EmbeddedServer(tmp_path / "pgdata").start()
    assert (tmp_path / "pgdata" / "notes.txt").read_text() == "mine"  # nothing lost


def test_ships_psql_and_pgbench() -> None:
    for name in ("psql", "pgbench"):
        out = subprocess.run([binary(name), "--version"], capture_output=True, text=True, check=True).stdout
        assert "18." in out


def test_another_clusters_postmaster_behind_a_reused_pid_is_not_ours(scratch_server: EmbeddedServer,
                                                                     tcp_server: EmbeddedServer) -> None:
    """A stale postmaster.pid that names a live postgres of another data directory: still stale."""
    scratch_server.start()
    scratch_server.stop()
    other = tcp_server.running()
    assert other is not None
    lines = [str(other.pid), str(scratch_server.pgdata), "0", "5432", str(scratch_server.pgdata), "", "0 0", "ready"]
    (scratch_server.pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")
    assert scratch_server.running() is None
    scratch_server.start()
    assert scratch_server.running().pid != other.pid
    assert tcp_server.running().pid == other.pid  # the other cluster is untouched


@pytest.mark.parametrize("folder", ["sp ace", "$(touch injected)", "semi;colon, comma 'quote\" `tick`"])
def test_data_directory_paths_are_data_not_shell(folder: str) -> None:
    """A clone under `sp ace` broke the start (`postgres: invalid argument: "ace/…"`): pg_ctl -o went
    through /bin/sh, so a folder name could also run a command. Now every path is its own argv element."""
    with server_directory("paths") as pgdata:
        server = EmbeddedServer(pgdata.parent / folder / "pgdata")
        try:
            dsn = server.start()
            assert value(dsn, "SELECT current_setting('data_directory')") == str(server.pgdata)
            socket_dir = server.socket_dir()
            assert value(dsn, "SHOW unix_socket_directories") == '"' + str(socket_dir).replace('"', '""') + '"'
            assert (socket_dir == server.pgdata) == ("," not in folder)  # a comma would split libpq's host list
            assert server.stop() is True
        finally:
            server.stop()
        assert not list(pgdata.parent.rglob("injected")) and not Path("/injected").exists()
        assert not Path("injected").exists()


def test_socket_path_length_is_counted_in_bytes(tmp_path: Path) -> None:
    """59 characters of Cyrillic are 107+ bytes: the socket goes to a short private directory instead."""
    long = Path("/tmp") / ("д" * 59)
    assert len(str(long)) < 100 and not socket_path_fits(long)
    server = EmbeddedServer(long)
    assert server.socket_dir() != server.pgdata and socket_path_fits(server.socket_dir())
    assert socket_path_fits(Path("/tmp") / ("d" * 80))  # 80 ASCII bytes + /.s.PGSQL.5432: still fits


def test_a_long_non_ascii_data_directory_gets_a_private_socket_directory() -> None:
    with server_directory("long") as pgdata:
        deep = pgdata.parent / ("курс asyncpg " * 4) / "ça va" / "pgdata"
        server = EmbeddedServer(deep)
        assert not socket_path_fits(server.pgdata)
        try:
            dsn = server.start()
            assert value(dsn, "SELECT 1") == 1
            socket_dir = server.socket_dir()
            assert socket_dir != server.pgdata
            assert socket_dir.stat().st_mode & 0o077 == 0  # the superuser logs in over it without a password
        finally:
            server.stop()
            shutil.rmtree(server.socket_dir(), ignore_errors=True)



@pytest.fixture
def nobodys_server() -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A real PostgreSQL of another OS user (nobody): its own data directory, its own postmaster."""
    other = {"user": "nobody", "group": "nogroup", "extra_groups": [], "cwd": "/"}
    with server_directory("nobody") as pgdata:
        pgdata.mkdir(mode=0o700)
        os.chown(pgdata, pwd.getpwnam("nobody").pw_uid, -1)
        subprocess.run([binary("initdb"), "-D", str(pgdata), "-U", "postgres", "--no-instructions"],
                       check=True, capture_output=True, env={**os.environ, "LC_ALL": "C.UTF-8"}, **other)
        postmaster = subprocess.Popen([binary("postgres"), "-D", str(pgdata), "-c", "listen_addresses=",
                                       "-c", f"unix_socket_directories={pgdata}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **other)
        deadline = time.monotonic() + 30
        while not (pgdata / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            yield pgdata, postmaster
        finally:
            postmaster.terminate()
            postmaster.wait(timeout=30)


@pytest.mark.skipif(os.geteuid() != 0, reason="a second OS user's server needs root to set up")
def test_another_users_data_directory_gets_one_paragraph(nobodys_server: tuple[Path, subprocess.Popen[bytes]],
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Two OS users, one data directory: PermissionError tracebacks, and `db status` said "not
    running" while the other user's server ran; `doctor` crashed."""
    from helpers.admin import cli

    pgdata, postmaster = nobodys_server
    monkeypatch.setenv("COURSE_PGDATA", str(pgdata))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for command in (["db", "status"], ["db", "start"], ["db", "stop"]):
        assert cli.main(command) == 1
        printed = capsys.readouterr().err
        assert f"data directory {pgdata} belongs to the OS user 'nobody', not to you ('root')" in printed, printed
        assert f"its server is running (pid {postmaster.pid}, OS user nobody)" in printed
        assert "COURSE_PGDATA" in printed and "What to do:" in printed
    assert cli.main(["doctor"]) == 1
    server_line = next(line for line in capsys.readouterr().out.splitlines() if " server " in line)
    assert server_line.startswith("FAIL") and "belongs to the OS user 'nobody'" in server_line
    assert postmaster.poll() is None  # the owner's server is untouched
    assert (pgdata / "postmaster.pid").exists()

def test_a_relative_course_pgdata_is_taken_from_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels run in notebooks/: resolved against the current folder, a relative COURSE_PGDATA
    silently made a second cluster there."""
    from helpers import config

    root = Path(config.REPO_ROOT)
    monkeypatch.setenv("COURSE_PGDATA", "build/elsewhere")
    for folder in (root, root / "notebooks", Path("/")):
        monkeypatch.chdir(folder)
        assert config.pgdata_dir() == root / "build" / "elsewhere"
    code = "from helpers.target import resolve; print(resolve().pgdata)"
    kernel_like = subprocess.run([sys.executable, "-c", code], cwd=root / "notebooks", capture_output=True, text=True,
                                 env={**os.environ, "COURSE_PGDATA": "build/elsewhere", "DATABASE_URL": ""}, check=True)
    assert kernel_like.stdout.strip() == str(root / "build" / "elsewhere")
    monkeypatch.setenv("COURSE_PGDATA", "/srv/course/pgdata")
    assert config.pgdata_dir() == Path("/srv/course/pgdata")


def test_binaries_in_a_path_with_shell_syntax_are_refused_before_initdb(tmp_path: Path) -> None:
    """initdb runs `"<bin>/postgres" -V` through /bin/sh: in a clone under `a$(touch PWNED)b`, it ran
    the command (tried by hand). The course stops before initdb with what to do."""
    binaries = tmp_path / "a$(touch PWNED)b" / "bin"
    server = EmbeddedServer(tmp_path / "pgdata", bin_dir=binaries)
    with pytest.raises(ServerError, match="initdb cannot run from") as info:
        server.start()
    assert "move or clone the course" in str(info.value)
    assert not (tmp_path / "pgdata").exists() and not list(tmp_path.rglob("PWNED"))
