"""A loopback proxy that lets redshift_connector talk to the test PostgreSQL server.

Two things stop the driver from speaking to PostgreSQL directly (see
/work/shared/notes/measurements.md): its StartupMessage carries Redshift-only keys
that PostgreSQL refuses, and it cannot parse a server_version such as
"15.18 (Debian …)". The proxy rewrites exactly those two messages and pipes every
other byte through untouched, so what the tests exercise is the real driver on the
real wire protocol. An SSLRequest is answered 'N' (plain text); connect with
``ssl=False``.

Used only by tests.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tests.support.sockets import shut

REDSHIFT_ONLY_STARTUP_KEYS = frozenset(
    {b"client_protocol_version", b"driver_version", b"os_version", b"driver_discovery_version"}
)
REPORTED_SERVER_VERSION = b"8.0.2"

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102
_PROTOCOL_3 = 196608


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise ConnectionError("peer closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def rewrite_startup(body: bytes) -> bytes:
    """A StartupMessage body (after length and protocol) without the Redshift-only keys."""
    parts = body.split(b"\x00")
    # The body is key\0value\0...key\0value\0\0: pairs, then two empty strings.
    pairs = list(zip(parts[0:-2:2], parts[1:-2:2], strict=True))
    kept = b"".join(
        k + b"\x00" + v + b"\x00" for k, v in pairs if k not in REDSHIFT_ONLY_STARTUP_KEYS
    )
    return kept + b"\x00"


def rewrite_parameter_status(body: bytes) -> bytes:
    name, _, _ = body.partition(b"\x00")
    if name != b"server_version":
        return body
    return name + b"\x00" + REPORTED_SERVER_VERSION + b"\x00"


class RedshiftProxy:
    """Listen on 127.0.0.1 and forward each connection to ``upstream``."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host = "127.0.0.1"
        self.port: int = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._guard = threading.Lock()
        self._closed = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True, name="rs-proxy")

    def start(self) -> RedshiftProxy:
        self._acceptor.start()
        return self

    def close(self) -> None:
        self._closed.set()
        with suppress(OSError):
            self._listener.close()
        with self._guard:
            sockets = list(self._sockets)
        for s in sockets:
            shut(s)

    # ------------------------------------------------------------ plumbing

    def _track(self, s: socket.socket) -> socket.socket:
        # Without it, Nagle's algorithm meets delayed ACKs: ~40 ms on every round trip.
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._guard:
            self._sockets.add(s)
        return s

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        server: socket.socket | None = None
        try:
            first = self._startup(client)
            if first is None:
                return
            server = self._track(socket.create_connection(self._upstream))
            server.sendall(first)
            back = threading.Thread(target=self._from_server, args=(server, client), daemon=True)
            back.start()
            _pipe(client, server)
        except (OSError, ConnectionError):
            pass
        finally:
            for s in (client, server):
                if s is not None:
                    shut(s)
                    with self._guard:
                        self._sockets.discard(s)

    def _startup(self, client: socket.socket) -> bytes | None:
        """The client's first message as the server should see it."""
        while True:
            length, code = struct.unpack("!ii", _read_exactly(client, 8))
            if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                client.sendall(b"N")  # no encryption: the client goes on in plain text
                continue
            rest = _read_exactly(client, length - 8)
            if code != _PROTOCOL_3:  # CancelRequest, or a protocol PostgreSQL will refuse
                return struct.pack("!ii", length, code) + rest
            body = rewrite_startup(rest)
            return struct.pack("!ii", len(body) + 8, code) + body

    def _from_server(self, server: socket.socket, client: socket.socket) -> None:
        try:
            # Message by message until the first ReadyForQuery, which ends the startup
            # phase and with it every ParameterStatus('server_version'); then raw bytes.
            while True:
                kind = _read_exactly(server, 1)
                (length,) = struct.unpack("!i", _read_exactly(server, 4))
                body = _read_exactly(server, length - 4)
                if kind == b"S":
                    body = rewrite_parameter_status(body)
                client.sendall(kind + struct.pack("!i", len(body) + 4) + body)
                if kind == b"Z":
                    break
            _pipe(server, client)
        except (OSError, ConnectionError):
            pass
        finally:
            shut(client)
            shut(server)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    while True:
        data = source.recv(65536)
        if not data:
            return
        sink.sendall(data)


@contextmanager
def redshift_proxy(upstream_host: str, upstream_port: int) -> Iterator[RedshiftProxy]:
    proxy = RedshiftProxy(upstream_host, upstream_port).start()
    try:
        yield proxy
    finally:
        proxy.close()
