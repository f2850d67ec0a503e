"""What the embedded servers (simulator, probe HTTP, fault relay) share: the listening socket
they hand to uvicorn or asyncio, whether an address is loopback, and ``with`` for their
``start()`` / ``stop()``."""

from __future__ import annotations

import ipaddress
import socket
from typing import Self

__all__ = ["Served", "is_loopback", "listen_socket"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Served:
    """``with server:`` runs ``start()`` on entry and ``stop()`` on exit."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def listen_socket(host: str, port: int, *, backlog: int) -> socket.socket:
    """A non-blocking TCP socket listening on ``host:port`` (port 0: a free one).

    Raises:
        OSError: it cannot be bound (the socket is closed); the caller says what to do in its
            own command's terms (``errno.EADDRINUSE``: the port is taken).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on accepted sockets whose
    # listening socket says TCP, and without it Nagle + delayed ACKs add ~40 ms per response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
