"""A real PgBouncer in front of the course's server, for notebook 11's statement-cache and TLS lessons.

PgBouncer comes from the system's packages (`apt-get install pgbouncer`, `brew install
pgbouncer`); the course never builds or downloads it.  `PgBouncer(dsn).start()` writes a
config into a private temporary directory (mode 0700), starts the binary in the foreground
on a free loopback port and waits until it accepts connections; `stop()` (or leaving the
`with` block, or the kernel's exit) ends it and removes the directory.

Safe by default: it listens on 127.0.0.1 only and asks every client for a password (SCRAM),
a random one made per start unless the server's own is in the DSN; the password lives in the
auth file (mode 0600), never on a command line.  PgBouncer logs in to the server as the DSN
says: over the embedded server's Unix socket, or over TCP with the DSN's password.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .errors import CourseError
from .tls import Certificates, self_signed

#: Where the packages put the binary when /usr/sbin is not on a non-root user's PATH.
SEARCH = ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/opt/homebrew/bin/pgbouncer",
          "/usr/local/bin/pgbouncer")
INSTALL = "install it with `sudo apt-get install pgbouncer` (Debian, Ubuntu) or `brew install pgbouncer` (macOS)"
START_TIMEOUT = 10.0
#: The PgBouncer release that added `max_prepared_statements` (prepared statements in transaction mode).
PREPARED_STATEMENTS_SINCE = (1, 21)
_RUNNING: set[PgBouncer] = set()


class PgBouncerError(CourseError):
    """PgBouncer is missing, or it did not start."""


def binary() -> str | None:
    """The pgbouncer executable, or None where it is not installed."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((path for path in SEARCH if os.access(path, os.X_OK)), None)


def version(executable: str | None = None) -> tuple[int, int, int] | None:
    """The installed PgBouncer's version, e.g. (1, 18, 0), or None where it is not installed."""
    executable = executable or binary()
    if executable is None:
        return None
    out = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=10).stdout
    found = re.search(r"PgBouncer (\d+)\.(\d+)\.(\d+)", out)
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def missing_reason() -> str | None:
    """Why PgBouncer cannot be used here (one line), or None where it can."""
    return None if binary() else f"PgBouncer is not installed: {INSTALL}."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgBouncer:
    """One PgBouncer process in front of the server that `server_dsn` names."""

    def __init__(self, server_dsn: str, *, pool_mode: str = "transaction", pool_size: int = 4,
                 port: int | None = None, settings: dict[str, str] | None = None,
                 executable: str | None = None, tls_host: str | None = None) -> None:
        """settings: more `[pgbouncer]` lines, e.g. {"max_prepared_statements": "100"};
        tls_host: offer clients TLS (they may still choose plain) with a certificate for this name,
        signed by a CA made for this start (helpers.tls; its certificate is `self.tls.ca`)."""
        self.server = _server_parts(server_dsn)
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.port = port
        self.settings = settings or {}
        self.executable = executable
        self.tls_host = tls_host
        self.tls: Certificates | None = None
        self.password = self.server["password"] or secrets.token_urlsafe(16)
        self.directory: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    # -- public ---------------------------------------------------------------------------
    def start(self) -> PgBouncer:
        executable = self.executable or binary()
        if executable is None or not os.access(executable, os.X_OK):
            raise PgBouncerError(f"PgBouncer is not installed (looked for {executable or 'pgbouncer'} "
                                 "on PATH and in /usr/sbin).", INSTALL + "; the rest of the notebook runs without it.")
        chosen = self.port is None
        for attempt in range(3):
            self.port = free_port() if chosen else self.port
            try:
                return self._start(executable)
            except PgBouncerError as error:
                # a free port can be taken between choosing it and PgBouncer's bind(): choose again
                if not (chosen and "Address already in use" in str(error)) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _start(self, executable: str) -> PgBouncer:
        self.directory = Path(tempfile.mkdtemp(prefix="course-pgbouncer-"))
        self._write_files()
        with open(self.directory / "stderr.log", "wb") as stderr:  # what it says before its log file is open
            self.process = subprocess.Popen([executable, str(self.directory / "pgbouncer.ini")],
                                            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                                            cwd=self.directory, **_identity())
        _RUNNING.add(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def dsn(self, database: str, *, host: str = "127.0.0.1", **options: str) -> str:
        """A DSN for `database` through PgBouncer (the password inside: print it with helpers.mask).

        host: the name to connect with ("localhost" also reaches it); options: DSN parameters (sslmode=...)."""
        query = "&".join(f"{key}={quote(value)}" for key, value in options.items())
        user = quote(self.server["user"], safe="")
        return (f"postgresql://{user}:{quote(self.password, safe='')}@{host}:{self.port}/{database}"
                + (f"?{query}" if query else ""))

    def last_login(self) -> str:
        """PgBouncer's log line for the latest client login, from `db=` on (it names the TLS in use)."""
        logins = [line for line in self._log(lines=0).splitlines() if "login attempt:" in line]
        return logins[-1].split("login attempt: ", 1)[1] if logins else "(no login yet)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
        _RUNNING.discard(self)

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # -- starting ----------------------------------------------------------------------
    def _write_files(self) -> None:
        assert self.directory is not None
        host = self.server["host"]
        target = f"host={_quoted(host)} port={self.server['port']}"
        lines = {
            "listen_addr": "127.0.0.1", "listen_port": str(self.port), "unix_socket_dir": "",
            "auth_type": "scram-sha-256", "auth_file": str(self.directory / "users.txt"),
            "pool_mode": self.pool_mode, "default_pool_size": str(self.pool_size), "max_client_conn": "100",
            **self._tls_settings(),
            **self.settings,
        }
        config = "[databases]\n* = " + target + "\n\n[pgbouncer]\n" + "".join(f"{k} = {v}\n" for k, v in lines.items())
        self._write(self.directory / "pgbouncer.ini", config)
        self._write(self.directory / "users.txt", f"{_auth_quoted(self.server['user'])} {_auth_quoted(self.password)}\n")
        self.directory.chmod(0o700)
        owner = _identity()
        if owner:  # as root PgBouncer runs as the embedded server's user, who must own its files
            import pwd

            entry = pwd.getpwnam(owner["user"])
            for path in (self.directory, *self.directory.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def _tls_settings(self) -> dict[str, str]:
        if self.tls_host is None:
            return {}
        assert self.directory is not None
        self.tls = self_signed(self.directory, self.tls_host)
        self.tls.key.chmod(0o600)
        return {"client_tls_sslmode": "allow", "client_tls_cert_file": str(self.tls.cert),
                "client_tls_key_file": str(self.tls.key)}

    @staticmethod
    def _write(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text)

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PgBouncerError(f"PgBouncer did not start on 127.0.0.1:{self.port}. Its log says:\n{self._log()}",
                                     _advice(self._log()))
            if "process up:" in self._log(lines=0):  # logged once it listens (a port check could reach another program)
                return
            time.sleep(0.05)
        raise PgBouncerError(f"PgBouncer did not accept connections on 127.0.0.1:{self.port} "
                             f"within {START_TIMEOUT:.0f} s. Its log says:\n{self._log()}", _advice(self._log()))

    def _log(self, lines: int = 5) -> str:
        """The log's last `lines` lines (0: all of it)."""
        if self.directory is None:
            return "(no log)"
        text = ""
        for name in ("stderr.log", "pgbouncer.log"):
            with contextlib.suppress(OSError):
                text += (self.directory / name).read_text(errors="replace")
        return ("\n".join(text.splitlines()[-lines:]) if lines else text) or "(no log)"


def _advice(log: str) -> str:
    if "Address already in use" in log:
        return "another program listens on that port: stop it, or start PgBouncer without `port=` to get a free one."
    return "read the log above; `pgbouncer --version` checks the installation."


def _identity() -> dict[str, Any]:
    """As root, PgBouncer (which refuses to run as root) runs as the embedded server's user."""
    if os.geteuid() != 0:
        return {}
    from .server import SYSTEM_USER

    return {"user": SYSTEM_USER, "group": SYSTEM_USER, "extra_groups": []}


def _server_parts(dsn: str) -> dict[str, str]:
    """host (a socket directory or an address), port, user and password of a course DSN."""
    parts = urlsplit(dsn)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return {"host": query.get("host") or parts.hostname or "127.0.0.1",
            "port": query.get("port") or str(parts.port or 5432),
            "user": unquote(parts.username or "postgres"),
            "password": unquote(parts.password or "")}


def _quoted(value: str) -> str:
    """A value in PgBouncer's connection strings: single quotes, a quote doubled."""
    return "'" + value.replace("'", "''") + "'"


def _auth_quoted(value: str) -> str:
    """A field of PgBouncer's auth file: double quotes, a quote doubled."""
    return '"' + value.replace('"', '""') + '"'


@atexit.register
def _stop_all() -> None:
    for bouncer in list(_RUNNING):
        bouncer.stop()
