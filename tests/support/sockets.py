"""Socket chores shared by the loopback proxies."""

from __future__ import annotations

import socket
from contextlib import suppress


def shut(s: socket.socket) -> None:
    """Shut down and close ``s``, whatever state the peer left it in."""
    with suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        s.close()
