"""uv.lock installs in the image: a locked wheel for every runtime package, per architecture.

The image installs with --only-binary on a base without compilers, so a
runtime package with no wheel for CPython 3.13 on Amazon Linux 2023 (glibc
2.34) breaks the build for that architecture. The check reads the wheel file
names uv recorded in the lock; it needs no network.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename
from samtranslator.yaml_helper import yaml_parse

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())
PACKAGES = LOCK["package"]
# Amazon Linux 2023, the base of public.ecr.aws/lambda/python:3.13.
IMAGE_GLIBC_MINOR = 34
# The template's Architecture values, as the wheel tags spell them.
MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}


def image_python() -> tuple[int, int]:
    found = re.findall(r"^FROM public\.ecr\.aws/lambda/python:(\d+)\.(\d+)", _dockerfile(), re.M)
    assert found, f"one Lambda Python base expected, got {found}"
    assert len(set(found)) == 1, f"one Lambda Python base expected, got {found}"
    major, minor = found[0]
    return int(major), int(minor)


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def offered_architectures() -> list[str]:
    template = yaml_parse((ROOT / "deploy" / "template.yaml").read_text())
    return [MACHINE[a] for a in template["Parameters"]["Architecture"]["AllowedValues"]]


def supported_tags(python: tuple[int, int], machine: str) -> set[Tag]:
    platforms = [f"manylinux_2_{m}_{machine}" for m in range(IMAGE_GLIBC_MINOR, 16, -1)]
    platforms.append(f"manylinux2014_{machine}")
    if machine == "x86_64":
        platforms += [f"manylinux_2_{m}_{machine}" for m in range(16, 4, -1)]
        platforms += ["manylinux2010_x86_64", "manylinux1_x86_64"]
    interpreter = f"cp{python[0]}{python[1]}"
    return {
        *cpython_tags(python, abis=[interpreter], platforms=platforms),
        *compatible_tags(python, interpreter, platforms),
    }


def environment(python: tuple[int, int], machine: str) -> dict[str, str]:
    version = f"{python[0]}.{python[1]}"
    return {
        "python_version": version,
        "python_full_version": f"{version}.0",
        "platform_machine": machine,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


def _locked(name: str, version: str | None) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        p for p in PACKAGES if p["name"] == name and version in (None, p["version"])
    ]
    assert len(found) == 1, f"{name} {version}: {len(found)} locked entries"
    return found[0]


def runtime_packages(env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The project's dependencies (no extras) and theirs, as the lock resolves them for env."""
    seen: set[tuple[str, str]] = set()
    todo = list(_locked("datalakep", None)["dependencies"])
    while todo:
        dependency = todo.pop()
        if "marker" in dependency and not Marker(dependency["marker"]).evaluate(env):
            continue
        package = _locked(dependency["name"], dependency.get("version"))
        for extra in dependency.get("extra", []):
            todo.extend(package["optional-dependencies"][extra])
        if (package["name"], package["version"]) in seen:
            continue
        seen.add((package["name"], package["version"]))
        todo.extend(package.get("dependencies", []))
        yield package


def wheel_tags(package: dict[str, Any]) -> set[Tag]:
    tags: set[Tag] = set()
    for wheel in package.get("wheels", []):
        tags |= set(parse_wheel_filename(wheel["url"].rsplit("/", 1)[-1])[3])
    return tags


@pytest.mark.parametrize("machine", offered_architectures())
def test_every_runtime_package_has_a_locked_wheel_for_the_image(machine: str) -> None:
    python = image_python()
    supported = supported_tags(python, machine)
    packages = list(runtime_packages(environment(python, machine)))

    missing = [f"{p['name']} {p['version']}" for p in packages if not wheel_tags(p) & supported]

    assert {p["name"] for p in packages} >= {"pyarrow", "duckdb", "fastexcel", "psycopg-binary"}
    assert missing == [], f"no cp{python[0]}{python[1]} manylinux {machine} wheel: {missing}"


def test_the_lock_is_the_one_pyproject_resolves_to(tmp_path: Path) -> None:
    """A dependency edited in pyproject without `uv lock` would reach neither venv nor image."""
    uv = Path(sys.executable).with_name("uv")

    checked = subprocess.run(
        [str(uv), "lock", "--locked", "--offline", "--directory", str(ROOT)],
        env={**os.environ, "UV_CACHE_DIR": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        check=False,
    )

    assert checked.returncode == 0, checked.stderr
