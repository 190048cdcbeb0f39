"""A loopback TCP forwarder that can play a server outage: the warehouse "goes away".

``close_gate()`` cuts every open connection (reset, as when a server dies) and stops
listening, so new connections are refused exactly as by a host whose server is
down; ``open_gate()`` listens again on the same port. Bytes are piped untouched.

Used only by tests.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tests.support.sockets import shut


class GatedProxy:
    """Listen on 127.0.0.1 and forward each connection to ``upstream`` while the gate is open."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self.host = "127.0.0.1"
        self._guard = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        # Connections cut by close_gate(); refused ones never reach this process.
        self.cut = 0
        self._start_acceptor(self._listener)

    @property
    def is_open(self) -> bool:
        return self._listener is not None

    def close_gate(self) -> None:
        with self._guard:
            listener, self._listener = self._listener, None
            sockets = list(self._sockets)
            self._sockets.clear()
            self.cut += len(sockets) // 2
        if listener is not None:
            shut(listener)
        for s in sockets:
            _reset(s)

    def open_gate(self) -> None:
        with self._guard:
            if self._listener is not None:
                return
        deadline = time.monotonic() + 10
        while True:
            try:
                listener = self._listen(self.port)
                break
            except OSError:
                # The old listener's port lingers for a moment on some kernels.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with self._guard:
            self._listener = listener
        self._start_acceptor(listener)

    def close(self) -> None:
        self.close_gate()

    # ------------------------------------------------------------ plumbing

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        return listener

    def _start_acceptor(self, listener: socket.socket) -> None:
        threading.Thread(
            target=self._accept, args=(listener,), daemon=True, name="gated-proxy"
        ).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the gate closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self._upstream)
        except OSError:
            _reset(client)
            return
        with self._guard:
            if self._listener is None:  # the gate closed while this one was being accepted
                admitted = False
            else:
                admitted = True
                self.accepted += 1
                for s in (client, server):
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._sockets.add(s)
        if not admitted:
            _reset(client)
            _reset(server)
            return
        threading.Thread(target=_pipe, args=(server, client, self), daemon=True).start()
        _pipe(client, server, self)

    def _forget(self, *sockets: socket.socket) -> None:
        with self._guard:
            for s in sockets:
                self._sockets.discard(s)


def _pipe(source: socket.socket, sink: socket.socket, proxy: GatedProxy) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        proxy._forget(source, sink)
        shut(source)
        shut(sink)


def _reset(s: socket.socket) -> None:
    # SO_LINGER 0 makes close() send RST, what a peer sees when the server host dies;
    # shutdown() first wakes the pipe thread blocked in recv() on this socket.
    with suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    shut(s)


@contextmanager
def gated_proxy(upstream_host: str, upstream_port: int) -> Iterator[GatedProxy]:
    proxy = GatedProxy(upstream_host, upstream_port)
    try:
        yield proxy
    finally:
        proxy.close()
