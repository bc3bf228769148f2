"""A throw-away PostgreSQL of another major version, on a loopback port with a password.

The course's default is the embedded PostgreSQL 18; the instructor guide promises 13 or
newer.  Debian's packaged server (`apt-get install postgresql-15`, which `.ci/run` does) is
the second version the tests use.  As a module it runs a command against such a server:

    python -m tests.pg_other .venv/bin/python -m pytest notebooks/

starts the cluster in a temporary directory (as a non-root user), runs the command with
DATABASE_URL pointing at it, stops it and removes it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers.server import EmbeddedServer, bin_dir
from tests.ports import free_port

PASSWORD = "other-version"
#: Where Debian and Ubuntu put their packaged servers; COURSE_OTHER_PG_BIN names another bin dir.
SEARCH = "/usr/lib/postgresql/*/bin"


def embedded_major() -> int:
    return _major(bin_dir())


def other_bin_dir() -> Path | None:
    """A bin directory whose server is not the embedded major version, or None."""
    explicit = os.environ.get("COURSE_OTHER_PG_BIN")
    candidates = [Path(explicit)] if explicit else sorted(Path("/").glob(SEARCH.lstrip("/")), reverse=True)
    for candidate in candidates:
        if (candidate / "postgres").exists() and (candidate / "initdb").exists() and \
                _major(candidate) != embedded_major():
            return candidate
    return None


def skip_reason() -> str:
    return (f"no second PostgreSQL major version found (looked in {SEARCH} and COURSE_OTHER_PG_BIN): "
            "install one, e.g. `apt-get install postgresql-15` (.ci/run does)")


@contextmanager
def other_server(parent: Path | None = None) -> Iterator[EmbeddedServer]:
    """The other version's server, started in a temporary directory and removed afterwards."""
    found = other_bin_dir()
    if found is None:
        raise RuntimeError(skip_reason())
    with tempfile.TemporaryDirectory(dir=parent) as tmp:
        os.chmod(tmp, 0o755)  # as root the server runs as another user, who must reach its data
        server = EmbeddedServer(Path(tmp) / "pgdata", port=free_port(), password=PASSWORD, bin_dir=found)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def _major(directory: Path) -> int:
    out = subprocess.run([str(directory / "postgres"), "--version"], capture_output=True, text=True).stdout
    match = re.search(r"\) (\d+)", out)
    return int(match.group(1)) if match else -1


def main(command: list[str]) -> int:
    if other_bin_dir() is None:
        print(f"skipped: {skip_reason()}", file=sys.stderr)
        return 0
    with other_server() as server:
        print(f"== PostgreSQL {_major(server.bin_dir)} on 127.0.0.1:{server.port} (password auth): "
              f"{' '.join(command)}", flush=True)
        return subprocess.run(command, env={**os.environ, "DATABASE_URL": server.dsn()}).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
