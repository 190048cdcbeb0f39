"""How the process starts: the CLI, the worker and the Lambda handler.

Python imports this package before any entrypoint module, so what must hold
before a library loads is set here, once, for all three.

numpy is left out. The service uses none of it, and the image does not install
it; but pyarrow imports numpy at its own import wherever it is installed, as it is
in a development environment (pandas brings it, for the samples and the
benchmark). Refused here, an entrypoint's process starts as the image's does:
about 0.1 s sooner than with numpy and its OpenBLAS, whose threads also spun on
the cores the parser child's parts wanted. pyarrow then converts to and from
numpy nowhere in the process, which nothing in it asks for. A process that has
already imported numpy (a test session) keeps it.
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder


class Absent(MetaPathFinder):
    """Refuses to find ``names`` (and their submodules), as if not installed."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self._names = frozenset(names)

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.partition(".")[0] in self._names:
            raise ModuleNotFoundError(f"{fullname} is left out at start-up", name=fullname)
        return None


if "numpy" not in sys.modules:
    sys.meta_path.insert(0, Absent(("numpy",)))
