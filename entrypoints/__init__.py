"""How the process starts: the CLI, the worker and the Lambda handler.

Python imports this package before any entrypoint module, so what must hold
before a library loads is set here, once, for all three.

``OPENBLAS_NUM_THREADS=1``: numpy loads OpenBLAS, which starts a thread per core
as it loads, and those threads spin while they wait for work. datalakeP calls no
BLAS routine (numpy only sorts, compares and fills here), yet on 2 cores the
spinning cost a cold ``datalakep ingest`` of 100,000 rows about 0.15 s of CPU and
0.1 s of wall: it took a core from the parser child's parts. An operator's own
setting is kept.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
