from __future__ import annotations

from pathlib import Path

import pytest

from domain.errors import ConfigurationError
from entrypoints.aws_containers import build_queue, build_worker_settings
from entrypoints.containers import cli_container
from infrastructure.aws.sqs_messages import SqsMessageSource

pytestmark = pytest.mark.unit


def test_a_worker_section_left_out_takes_every_setting_from_the_shipped_yaml() -> None:
    settings = build_worker_settings(None)

    # config/datalakep.yaml states these, and nothing else does.
    assert (settings.wait_seconds, settings.max_messages, settings.max_backoff_s) == (20, 10, 900)
    assert (settings.base_backoff_s, settings.poison_backoff_s) == (5, 30)


def test_a_setting_given_wins_over_the_shipped_one() -> None:
    assert build_worker_settings({"wait_seconds": 0, "dlq_url": None}).wait_seconds == 0


def test_an_unknown_key_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "datalakep.yaml"
    config.write_text("worker:\n  visibility_timeot: 60\nmetric: false\n", encoding="utf-8")

    with pytest.raises(ConfigurationError) as caught:
        cli_container(str(config))

    assert "metric, worker.visibility_timeot" in str(caught.value)


def test_the_queue_takes_the_shipped_visibility_timeout_when_none_is_set() -> None:
    queue = build_queue("http://127.0.0.1:9/1/q", None, lambda: None)

    assert isinstance(queue, SqsMessageSource)
    assert queue._visibility_timeout == 900
