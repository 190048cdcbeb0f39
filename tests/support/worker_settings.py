"""WorkerSettings for tests: the shipped config's worker section, with overrides."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from application.worker import WorkerSettings
from entrypoints.aws_containers import build_worker_settings
from entrypoints.containers import DEFAULT_CONFIG, load_config_file


def worker_settings(**overrides: Any) -> WorkerSettings:
    shipped = load_config_file(DEFAULT_CONFIG).get("worker")
    return replace(build_worker_settings(shipped), **overrides)
