"""Developer tools, never shipped: the demo, the sample generator, a PostgreSQL server.

Not in the runtime package (pyproject's setuptools ``include`` list names only
domain, application, infrastructure and entrypoints) nor in the image (the
Dockerfile copies those directories only). ``datalakep demo`` and ``datalakep
sample`` import it lazily and say so in one line where it is absent. ``bench``
imports from here and never from ``tests``; ``tests.support`` re-exports what it
needs. The import contracts in pyproject.toml hold production code to that.
"""
