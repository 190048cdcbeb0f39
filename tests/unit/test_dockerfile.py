"""The two rules about the image that span files; hadolint (scripts/test) lints the rest.

1. Dependencies come only from pyproject or uv.lock: nothing is installed in
   the image that the lock did not resolve.
2. `.dockerignore` drops no source the Dockerfile copies.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def instructions(keyword: str) -> list[str]:
    """The arguments of every ``keyword`` instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [line.split(None, 1)[1] for line in text.splitlines() if line.startswith(f"{keyword} ")]


def test_the_image_installs_only_what_pyproject_and_the_lock_name() -> None:
    installs = [
        command.strip()
        for run in instructions("RUN")
        for command in run.split("&&")
        if "pip install" in command
    ]

    # uv at the lock's own version, then the lock's export (hashes required),
    # then the project itself: nothing resolved or chosen by pip.
    assert len(installs) == 3, installs
    uv, locked, project = installs
    assert re.search(r"\"uv==\$\(python -c '.*uv\.lock.*'\)\"$", uv), uv
    assert "uv export --frozen --no-dev --no-emit-project" in " ".join(instructions("RUN"))
    for flag in ("--no-deps", "--require-hashes", "--only-binary=:all:", "-r /tmp/requirements"):
        assert flag in locked, (flag, locked)
    assert "--no-deps" in project, project
    assert project.endswith(" ."), project


def test_dockerignore_drops_no_copied_source() -> None:
    sources = [
        path.rstrip("/")
        for copy in instructions("COPY")
        if not copy.startswith("--from")
        for path in copy.split()[:-1]
    ]
    tracked = subprocess.run(
        ["git", "ls-files", "--", *sources], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    # git's matcher is stricter than Docker's (a bare name matches at any depth
    # for git, at the root only for Docker), so what passes here passes there.
    dropped = subprocess.run(
        [
            "git",
            "ls-files",
            "--cached",
            "--ignored",
            "--exclude-from=.dockerignore",
            "--",
            *sources,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    assert {"pyproject.toml", "uv.lock", "config/datalakep.yaml"} <= set(tracked)
    assert {"entrypoints/lambda_handler.py", "domain/errors.py"} <= set(tracked)
    assert dropped == []
