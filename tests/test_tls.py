"""A server that requires TLS, for real: Debian's PostgreSQL 15 (built with OpenSSL) with a self-signed
certificate and only `hostssl` lines in pg_hba.conf. (The embedded binaries have no TLS.)"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from helpers import ServerError, drop_course_databases, notebook_database
from helpers.server import SYSTEM_USER, EmbeddedServer
from tests.conftest import value
from tests.pg_other import other_bin_dir, other_server, skip_reason

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(other_bin_dir() is None, reason=skip_reason()),
              pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a certificate")]


@pytest.fixture(scope="module")
def tls_server() -> Iterator[EmbeddedServer]:
    """PostgreSQL 15 that accepts TCP connections with TLS only (`hostssl`), a fresh self-signed certificate."""
    with other_server() as server:
        server.stop()
        key, cert = server.pgdata / "server.key", server.pgdata / "server.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
        key.chmod(0o600)
        if os.geteuid() == 0:
            for path in (key, cert):
                shutil.chown(path, SYSTEM_USER, SYSTEM_USER)
        with (server.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\nssl = on\n")
        (server.pgdata / "pg_hba.conf").write_text(
            "local all postgres trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n")
        server.start()
        yield server


def test_a_client_without_tls_is_told_the_server_requires_it(tls_server: EmbeddedServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DB_PREFIX", "tls")
    monkeypatch.setenv("DATABASE_URL", tls_server.dsn() + "?sslmode=disable")
    started = time.monotonic()
    with pytest.raises(ServerError, match="refuses connections without TLS") as info:
        asyncio.run(notebook_database("x", seeded=False))
    assert time.monotonic() - started < 10
    assert "sslmode=disable (from the DSN) forbids TLS" in str(info.value)
    assert "What to do: remove sslmode=disable" in str(info.value)

    monkeypatch.setenv("DATABASE_URL", tls_server.dsn())  # the advice: asyncpg's default, prefer
    try:
        dsn = asyncio.run(notebook_database("x", seeded=False))
        assert value(dsn, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
    finally:
        asyncio.run(drop_course_databases())
