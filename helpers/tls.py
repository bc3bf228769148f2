"""A private certificate authority and one server certificate, for notebook 11's TLS lessons.

The course's servers run without TLS; a PgBouncer started with these files (helpers.pgbouncer)
speaks real TLS in front of them, so the notebook can show what `sslmode=verify-full` and an
`SSLContext` check, and the errors a learner meets.  The files are made by the `openssl`
command (the system's; nothing is downloaded), in the folder given: PgBouncer's own private
one, removed when it stops.  The keys are throw-away: valid for one day, the CA's key deleted
as soon as it has signed.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import CourseError


class TlsError(CourseError):
    """The certificates could not be made."""


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA's certificate: what a client trusts (`sslrootcert=`, `cafile=`)
    cert: Path  # the server's certificate, signed by the CA, for `host` only
    key: Path  # the server's private key
    host: str


def missing_reason() -> str | None:
    """Why certificates cannot be made here (one line), or None where they can."""
    return None if shutil.which("openssl") else "the `openssl` command is not installed (Debian: apt-get install openssl)."


def self_signed(directory: Path, host: str = "localhost") -> Certificates:
    """A new CA and a certificate for `host` (a DNS name in subjectAltName) signed by it, in `directory`."""
    if missing_reason():
        raise TlsError(f"Cannot make certificates: {missing_reason()}", "install openssl, then run the cell again.")
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    cert, key, request = directory / "server.crt", directory / "server.key", directory / "server.csr"
    (directory / "san.ext").write_text(f"subjectAltName=DNS:{host}\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]  # fast to make, unlike RSA
    _openssl("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca), "-days", "1", "-subj", "/CN=asyncpg course CA")
    _openssl("req", *ec, "-keyout", str(key), "-out", str(request), "-subj", f"/CN={host}")
    _openssl("x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(cert), "-days", "1", "-extfile", str(directory / "san.ext"))
    for leftover in (ca_key, request, directory / "san.ext", directory / "ca.srl"):
        leftover.unlink(missing_ok=True)  # the CA signs nothing else
    return Certificates(ca=ca, cert=cert, key=key, host=host)


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise TlsError(f"`openssl {args[0]}` failed: {result.stderr.strip()}", "check the openssl installation.")
