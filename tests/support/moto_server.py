"""moto in server mode on 127.0.0.1: real HTTP, as the adapters talk to AWS."""

from __future__ import annotations

import logging
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """Yield the endpoint URL of a moto server, emptied (see reset); stopped on exit."""
    from moto.server import ThreadedMotoServer

    # The server thread logs each request through werkzeug; a test that set up the
    # service's JSON logging on the root logger would print every one of them.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    reset(endpoint)
    try:
        yield endpoint
    finally:
        server.stop()


def reset(endpoint: str) -> None:
    """Forget every bucket, queue and secret the server holds.

    moto keeps its state in process-wide backends, not per server: without a
    reset, buckets and queues (and their versioning) leak from earlier tests.
    """
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")  # noqa: S310 - http, built here
    urllib.request.urlopen(reset)  # noqa: S310 - http, built here
