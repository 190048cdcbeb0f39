"""`validate` is a dry run: it never opens the warehouse nor reads the warehouse secret.

The warehouse is configured the way the deployed stack configures it, its password in
Secrets Manager, with Secrets Manager's endpoint a local server that records every
request. `validate` must succeed without one; `ingest`, run the same way, shows that the
endpoint is the one the process would call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# Nothing listens on port 1: a connection attempt would fail, not hang.
WAREHOUSE = "postgresql://datalakep@127.0.0.1:1/db?password=SecretsManager&secret_name=x"


class _Recorder(BaseHTTPRequestHandler):
    calls: list[str]

    def do_POST(self) -> None:
        self.calls.append(self.headers.get("X-Amz-Target", self.path))
        body = json.dumps({"__type": "ResourceNotFoundException", "message": "no"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def secrets_endpoint() -> Iterator[tuple[str, list[str]]]:
    calls: list[str] = []
    handler = type("Recorder", (_Recorder,), {"calls": calls})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", calls
    finally:
        server.shutdown()
        server.server_close()


def datalakep(tmp_path: Path, endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATALAKEP_WAREHOUSE": WAREHOUSE,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    env.pop("DATALAKEP_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_validate_never_reads_the_warehouse_secret(
    tmp_path: Path, secrets_endpoint: tuple[str, list[str]]
) -> None:
    endpoint, calls = secrets_endpoint
    upload = tmp_path / "gender_submission.csv"
    upload.write_text("PassengerId,Survived\n892,0\n893,1\n")

    validated = datalakep(tmp_path, endpoint, "validate", str(upload), "--json")

    assert validated.returncode == 0, validated.stderr
    [line] = [json.loads(x) for x in validated.stdout.splitlines()]
    assert (line["status"], line["rows_read"]) == ("valid", 2)
    assert calls == []
    assert not (tmp_path / "data").exists()

    ingested = datalakep(tmp_path, endpoint, "ingest", str(upload))

    assert ingested.returncode != 0
    assert calls
    assert all(c == "secretsmanager.GetSecretValue" for c in calls)
