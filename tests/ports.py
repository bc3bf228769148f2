"""A free loopback TCP port, for the test servers that listen on one (the class server, the
second PostgreSQL version, JupyterLab and JupyterHub in the browser tests)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on now (the OS picks it); the caller binds it soon after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
