"""uvicorn serving an app from a daemon thread, on a socket already bound: how the embedded
servers (the simulator, the probe's HTTP server, the gateway and its admin port) run in the
background. uvicorn is imported only when one is built."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn

__all__ = ["ServerThread"]

_POLL_S = 0.01


class ServerThread:
    """One uvicorn server on ``sock``, in a daemon thread named ``name``.

    ``start`` waits (bounded) until it accepts connections and says whether it did
    (``failure``: what ended the thread early, for the owner's error message); ``stop`` asks it
    to finish, waits (bounded), then forces it. ``loop`` is the thread's event loop once it
    runs. The socket is closed when the thread ends.
    """

    __slots__ = ("_config", "_sock", "_thread", "failure", "loop", "server")

    def __init__(self, config: uvicorn.Config, sock: socket.socket, name: str) -> None:
        import uvicorn

        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.failure: BaseException | None = None
        self._config = config
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def alive(self) -> bool:
        """Whether the server thread is running."""
        return self._thread.is_alive()

    def start(self, timeout_s: float) -> bool:
        """Start the thread; whether the server accepts connections within ``timeout_s``."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                return False
            time.sleep(_POLL_S)
        return True

    def start_or_raise(
        self, timeout_s: float, error: Callable[[str], BaseException], message: str
    ) -> None:
        """``start``, or stop it and raise ``error(message + what ended the thread)``."""
        if not self.start(timeout_s):
            self.stop(timeout_s)
            raise error(f"{message}: {self.failure!r}" if self.failure else message)

    def _run(self) -> None:
        server, sock = self.server, self._sock

        async def serve() -> None:
            self.loop = asyncio.get_running_loop()
            await server.serve(sockets=[sock])

        try:
            with asyncio.Runner(loop_factory=self._config.get_loop_factory()) as runner:
                runner.run(serve())
        except BaseException as exc:  # reported by the owner's start(), never lost in the thread
            self.failure = exc
        finally:
            sock.close()

    def stop(self, timeout_s: float) -> bool:
        """Ask the server to finish, wait up to ``timeout_s`` (then force it, 2 s more);
        whether the thread has ended."""
        self.server.should_exit = True
        if self._thread.ident is None:  # never started: nothing runs, the socket is ours
            self._sock.close()
            return True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self.server.force_exit = True
            self._thread.join(2.0)
        return not self._thread.is_alive()
