"""The wheel, installed outside the repository, runs with its shipped config.

Built offline (no build isolation) and installed without dependencies into a
fresh venv that borrows the test venv's site-packages for them, then run from
a directory with no config/ and no PYTHONPATH: what `pip install datalakep`
gives a user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "application", "infrastructure", "entrypoints")
SOURCES = ("pyproject.toml", "README.md", *PACKAGES, "config")


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_every_package_directory_is_listed_for_the_wheel() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in PACKAGES
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


def test_a_wheel_installed_outside_the_repo_works(tmp_path: Path, titanic: Path) -> None:
    # Built from a copy of what the Dockerfile copies: the build's egg-info and
    # build/ must not land in the working tree.
    source = tmp_path / "source"
    source.mkdir()
    for part in SOURCES:
        if (ROOT / part).is_dir():
            shutil.copytree(
                ROOT / part, source / part, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / part, source / part)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DATALAKEP_"))}
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", tmp_path / "dist", source, cwd=tmp_path, env=env)  # fmt: skip
    [wheel] = (tmp_path / "dist").glob("datalakep-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q",
        "--no-deps", "--no-index", wheel, cwd=tmp_path, env=env)  # fmt: skip
    site = next((venv / "lib").glob("python3*/site-packages"))
    # The dependencies, borrowed: a path line, so the test venv's own .pth files
    # (its editable install of this repository) are not processed.
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    user = tmp_path / "elsewhere"
    user.mkdir()
    datalakep = venv / "bin" / "datalakep"

    version = run(datalakep, "--version", cwd=user, env=env)
    out = run(datalakep, "validate", titanic / "train.csv", cwd=user, env=env)
    where = run(venv / "bin" / "python", "-c",
                "from entrypoints.containers import DEFAULT_CONFIG; print(DEFAULT_CONFIG)",
                cwd=user, env=env)  # fmt: skip

    assert version.startswith("datalakep 0.")
    assert "would load 891 rows" in out
    assert Path(where.strip()).is_relative_to(site / "datalakep_config")
    assert not (user / "data").exists()
    # Developer tools and the fakes stay out of the product.
    assert not {"devtools", "tests"} & {p.name for p in site.iterdir()}
