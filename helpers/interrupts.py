"""Stop (■, Kernel → Interrupt) takes effect at once in a cell that awaits, e.g. a long query.

ipykernel (7.4) turns SIGINT into a cancellation of the running cell, but its signal handler
only queues that with `call_soon`; an event loop asleep in `select()` sees it at its next
event: for `await conn.fetch(...)`, when the query ends on its own (measured: a 20 s sleep
interrupted after 3 s ended at 20 s).  A wakeup file descriptor (Python's `signal.set_wakeup_fd`,
the mechanism asyncio itself uses for its signal handlers) makes the signal wake the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket


def wake_on_interrupt() -> bool:
    """Let signals wake the running event loop (the kernel's); a no-op without one, or if another
    wakeup descriptor is set already (it is not ours to replace)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    try:
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    except ValueError:  # not the main thread
        reader.close()
        writer.close()
        return False
    if previous != -1:
        signal.set_wakeup_fd(previous)
        reader.close()
        writer.close()
        return False
    loop.add_reader(reader.fileno(), _drain, reader)
    _KEEP.append((reader, writer))  # the descriptors live as long as the kernel
    return True


def _drain(reader: socket.socket) -> None:
    with contextlib.suppress(BlockingIOError):
        reader.recv(4096)


_KEEP: list[tuple[socket.socket, socket.socket]] = []
