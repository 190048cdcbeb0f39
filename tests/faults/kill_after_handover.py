"""`datalakep worker` that dies by SIGKILL once a parsed sheet has been handed over.

    python -m tests.faults.kill_after_handover worker --queue-url URL ...

At that moment the downloaded source sits in the spool directory and the sheet's
rows in an Arrow file the worker has not yet mapped: what a worker killed
mid-parse (OOM killer, lost instance) leaves behind. The seam is patched from
outside, as tests/support/crashing_worker.py does; the parser child dies with its
worker (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import sys
from typing import Any

import infrastructure.readers.isolated as isolated
from entrypoints.cli import main
from tests.support.crashing_worker import die

_call = isolated._Child.call


def _call_then_die(self: isolated._Child, *request: Any) -> Any:
    answer = _call(self, *request)
    if request[0] == "read":
        die("handover #1")
    return answer


isolated._Child.call = _call_then_die  # type: ignore[method-assign]

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
