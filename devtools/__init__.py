"""Developer tools shared by the tests and the benchmark, never shipped.

Not in the runtime package (pyproject's setuptools ``include`` list names only
domain, application, infrastructure and entrypoints) nor in the image (the
Dockerfile copies those directories only). ``bench`` imports from here and never
from ``tests``; ``tests.support`` re-exports what it needs.
"""
