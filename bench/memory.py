"""Peak memory of a whole process tree, sampled from /proc.

``wait4``'s ``ru_maxrss`` is the peak of one process (or of its largest
descendant), never of several at once. datalakep parses each workbook in a
forked child (infrastructure/readers/isolated.py) while the parent holds its
own memory, so the benchmark also samples the tree: the sum of every member's
RSS (pages shared between parent and child counted in both: an upper bound)
and of their PSS (shared pages split between the sharers: what the tree costs
the machine).
"""

from __future__ import annotations

import threading
from pathlib import Path

_INTERVAL_S = 0.02
KIB = 1024


def _tree(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            # A process may exit between being found and being listed.
            tasks = list(Path(f"/proc/{pid}/task").glob("*/children"))
        except OSError:
            continue
        for task in tasks:
            try:
                todo.extend(int(p) for p in task.read_text().split())
            except OSError:
                continue
    return found


def _usage_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; zeros once it is gone."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except (OSError, ValueError):
        return 0, 0
    return rss, pss


class TreeSampler:
    """Samples the tree under ``pid`` every 20 ms until stopped; keeps the peaks in MB."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._stop = threading.Event()
        self.peak_rss_mb = 0.0
        self.peak_pss_mb = 0.0
        self.most_processes = 0
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _tree(self._pid)
            usage = [_usage_kib(p) for p in pids]
            self.most_processes = max(self.most_processes, sum(1 for u in usage if u[0]))
            self.peak_rss_mb = max(self.peak_rss_mb, sum(u[0] for u in usage) / KIB)
            self.peak_pss_mb = max(self.peak_pss_mb, sum(u[1] for u in usage) / KIB)
            self._stop.wait(_INTERVAL_S)
