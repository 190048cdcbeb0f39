"""Developer tools, never shipped: the demo, the sample generator, a PostgreSQL server.

Not in the runtime package (pyproject's setuptools ``include`` list names only
domain, application, infrastructure and entrypoints) nor in the image (the
Dockerfile copies those directories only), so the demo and the generator run
as ``python -m devtools.demo`` / ``python -m devtools.sample`` from a checkout,
not as ``datalakep`` commands. ``bench`` imports from here and never from
``tests``; ``tests.support`` re-exports what it needs. The import contracts in
pyproject.toml keep production code from importing any of it.
"""
