"""What a JSON logger adds to the Lambda's cold start: the stdlib formatter or powertools.

    pip install --target /tmp/powertools aws-lambda-powertools
    .venv/bin/python -m bench.logger_cold_start --powertools /tmp/powertools --runs 15

Each fresh process imports ``entrypoints.aws_containers`` and builds the Lambda
container (what the handler module does at init), then times only the logger's
import and set-up, wall and CPU. Timing the difference inside one process keeps
the machine's load out of the comparison as far as possible; the cases alternate
within each round and the medians are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

_BEFORE = (
    "import time, entrypoints.aws_containers as c\n"
    "c.lambda_container()\n"
    "w, p = time.perf_counter(), time.process_time()\n"
)
_AFTER = (
    "\nimport json\n"
    "print(json.dumps([(time.perf_counter() - w) * 1e3, (time.process_time() - p) * 1e3]))"
)
CASES = {
    "stdlib JsonFormatter": (
        "from infrastructure.observability.logs import configure_logging\nconfigure_logging('json')"
    ),
    "aws-lambda-powertools Logger": (
        "from aws_lambda_powertools import Logger\nLogger(service='datalakep')"
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--powertools", required=True, help="directory holding the package")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), args.powertools]))
    env = {**os.environ, "PYTHONPATH": path, "DATALAKEP_WAREHOUSE": "duckdb:///:memory:"}
    found: dict[str, list[list[float]]] = {name: [] for name in CASES}
    for _ in range(args.runs):
        for name, code in CASES.items():
            done = subprocess.run(
                [sys.executable, "-c", _BEFORE + code + _AFTER],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            found[name].append(json.loads(done.stdout.splitlines()[-1]))
    for name, times in found.items():
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        print(f"{name}: +{wall:.1f} ms wall, +{cpu:.1f} ms CPU (median of {len(times)})")


if __name__ == "__main__":
    main()
