"""dependency-injector and pyarrow, imported without the integrations they probe for.

Both libraries import, when they find them installed, packages the service never
hands them: dependency-injector imports pydantic-settings (and so pydantic) and
werkzeug at import, to offer ``Configuration.from_pydantic`` and to skip web
frameworks' proxies when wiring; pyarrow imports pandas at its first conversion
of Python objects, to recognise a pandas Series handed to it. The image has none
of them; a development environment has them all (pandas for the samples and the
benchmark, the others through moto), and every cold start there paid 0.3-0.5 s
of CPU importing them. An import finder that refuses them while the probes run
gives the process what the image gets. (``None`` in ``sys.modules`` does not:
Cython's ``import`` returns the None instead of raising.) A package already
imported is left as it is, and the finder goes once the probes have run. (numpy,
and so pandas, stays out for good: see ``entrypoints/__init__.py``.)

The containers import dependency-injector from here, so the probes run before
any provider is built or any Arrow conversion made, in every entrypoint.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

from entrypoints import Absent

# What dependency-injector's providers and wiring modules try to import.
_INJECTOR_EXTRAS = (
    "pydantic_settings",
    "pydantic",
    "werkzeug",
    "fastapi",
    "fast_depends",
    "starlette",
)
# What pyarrow's first conversion tries to import.
_ARROW_EXTRAS = ("pandas",)


@contextmanager
def _absent(names: tuple[str, ...]) -> Iterator[None]:
    """``names`` unimportable inside the block; modules already imported stay as they are."""
    finder = Absent(names)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


with _absent(_INJECTOR_EXTRAS):
    from dependency_injector import containers, providers

with _absent(_ARROW_EXTRAS):
    pa.array([0])

__all__ = ["containers", "providers"]
