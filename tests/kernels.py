"""nbval's kernels talk to pytest over Unix sockets instead of loopback TCP ports.

With TCP, jupyter_client picks "free" ports by binding to port 0 and closing again; the
kernel binds them a moment later. When several kernels start at once (two xdist workers,
four learners in the class test) another process can take such a port in between, and the
kernel dies with "Address already in use" (nbval: "Kernel died before replying to
kernel_info"). Each kernel here gets socket paths of its own in a private directory, so no
two kernels can collide (jupyter_client's own ipc default, "kernel-ipc" in the working
directory, would be shared by every kernel).

Only the test kernels change: learners' JupyterLab keeps its defaults.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid

import nbval.kernel
import pytest
from jupyter_client import KernelManager
from traitlets import default


class UnixSocketKernelManager(KernelManager):
    """A KernelManager whose channels are Unix sockets under a path no other kernel uses."""

    sockets = ""  # the private directory, made when pytest starts

    @default("transport")
    def _unix_socket_transport(self) -> str:
        return "ipc"

    def _ip_default(self) -> str:  # overrides jupyter_client's method of this name
        return os.path.join(self.sockets, uuid.uuid4().hex[:12])


def pytest_configure(config: pytest.Config) -> None:
    if os.name == "posix":
        UnixSocketKernelManager.sockets = tempfile.mkdtemp(prefix="nbval-kernels-")
        nbval.kernel.KernelManager = UnixSocketKernelManager


def pytest_unconfigure(config: pytest.Config) -> None:
    if UnixSocketKernelManager.sockets:
        shutil.rmtree(UnixSocketKernelManager.sockets, ignore_errors=True)
