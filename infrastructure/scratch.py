"""Scratch files: named after the process that owns them, put where they fit, swept when it dies.

A worker writes two kinds of scratch: the downloaded source (the spool, in the
temporary directory) and the parsed rows as an Arrow file (in ``/dev/shm`` when
it has room, else the spool). A process killed with SIGKILL removes neither.
Every scratch name therefore starts with ``datalakep-<pid>-``, the pid of the
process that will remove it, so the next start can remove what dead processes
left without touching a live worker's files or anyone else's. That takes the
scratch directories to be private to one PID namespace (a container's own /tmp
and /dev/shm, Lambda's sandbox): a pid from another namespace looks dead here.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from domain.errors import TransientError, UnreadableFileError

log = logging.getLogger(__name__)

_OWNED = re.compile(r"datalakep-(\d+)-")
SHM = Path("/dev/shm")  # noqa: S108 - the shared-memory mount itself, not a temp file name
# Room kept free beside a scratch file in /dev/shm: other programs share it, and
# a tmpfs that fills up fails whoever writes next, not only us.
SHM_HEADROOM = 0.25


def scratch_prefix(pid: int | None = None) -> str:
    """The start of every scratch name owned by ``pid`` (this process by default)."""
    return f"datalakep-{os.getpid() if pid is None else pid}-"


def spool_dir() -> Path:
    return Path(tempfile.gettempdir())


def free_bytes(directory: Path) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def capacity_bytes(directory: Path) -> int:
    stats = os.statvfs(directory)
    return stats.f_blocks * stats.f_frsize


def shm_dir() -> Path | None:
    """``/dev/shm`` when this machine has a writable one (Lambda has none)."""
    return SHM if SHM.is_dir() and os.access(SHM, os.W_OK) else None


def place(need: int, what: str, spool: Path | None = None) -> tuple[Path, ...]:
    """Where ``need`` bytes of scratch go, best first: RAM-backed if it fits there, the spool.

    The spool follows /dev/shm as the fallback for a short estimate. Raises
    TransientError when nothing has room now but the spool could hold it once
    freed, and UnreadableFileError (terminal) when not even the empty spool could:
    retrying on this machine can never succeed.
    """
    spool = spool or spool_dir()
    shm = shm_dir()
    free = free_bytes(spool)
    if shm is not None and free_bytes(shm) * (1 - SHM_HEADROOM) >= need:
        return (shm, spool)
    if free >= need:
        return (spool,)
    details = {"need_bytes": need, "free_bytes": free, "directory": str(spool)}
    if capacity_bytes(spool) < need:
        raise UnreadableFileError(
            f"{what} need about {need / 2**20:,.0f} MB of scratch space, more than {spool} "
            f"holds ({capacity_bytes(spool) / 2**20:,.0f} MB)",
            code="scratch_too_small",
            **details,
        )
    raise TransientError(
        f"{what} need about {need / 2**20:,.0f} MB of scratch space; {spool} has "
        f"{free / 2**20:,.0f} MB free",
        code="scratch_full",
        **details,
    )


def sweep_dead(directories: Iterable[Path] | None = None) -> int:
    """Remove scratch that processes no longer alive left behind; how many entries went.

    Only names of the form ``datalakep-<pid>-...`` whose pid is not a live process:
    a live worker's files, and files of other programs, are never touched.
    """
    if directories is None:
        directories = [d for d in (shm_dir(), spool_dir()) if d is not None]
    removed = 0
    for directory in directories:
        try:
            entries = list(directory.iterdir())
        except OSError:
            continue
        for entry in entries:
            match = _OWNED.match(entry.name)
            if match is None or _alive(int(match.group(1))):
                continue
            try:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            except FileNotFoundError:
                continue  # another process swept it first
            except OSError as error:
                log.warning("cannot remove scratch left by a dead process: %s (%s)", entry, error)
                continue
            removed += 1
    if removed:
        log.info("removed %d scratch file(s) left by processes that died", removed)
    return removed


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to judge
    return True
