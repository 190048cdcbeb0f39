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
imported is left as it is, and the finder goes once the probes have run: code
that imports pandas later gets it, and pyarrow still converts to pandas on
request (it looks for pandas again when asked to).

The containers import dependency-injector from here, so the probes run before
any provider is built or any Arrow conversion made, in every entrypoint.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.abc import MetaPathFinder

import pyarrow as pa

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


class _Absent(MetaPathFinder):
    """Refuses to find ``names`` (and their submodules), as if not installed."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self._names = frozenset(names)

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.partition(".")[0] in self._names:
            raise ModuleNotFoundError(f"{fullname} is left out at start-up", name=fullname)
        return None


@contextmanager
def _absent(names: tuple[str, ...]) -> Iterator[None]:
    """``names`` unimportable inside the block; modules already imported stay as they are."""
    finder = _Absent(names)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


with _absent(_INJECTOR_EXTRAS):
    from dependency_injector import containers, providers

with _absent(_ARROW_EXTRAS):
    # The first conversion also imports numpy.ma: done here, before any parser
    # child is forked, so that no child imports it again.
    pa.array([0])

__all__ = ["containers", "providers"]
