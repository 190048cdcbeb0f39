"""deploy/template.yaml's promises that cfn-lint does not check: least privilege, 6x visibility."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from samtranslator.yaml_helper import yaml_parse

pytestmark = pytest.mark.unit

TEMPLATE = yaml_parse(
    (Path(__file__).resolve().parents[2] / "deploy" / "template.yaml").read_text()
)
# Actions that take no resource ARN: IAM accepts only "*" for them.
UNSCOPED_ACTIONS = {"ecr:GetAuthorizationToken"}


def statements(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("Statement"), list):
            yield from node["Statement"]
        for value in node.values():
            yield from statements(value)
    elif isinstance(node, list):
        for value in node:
            yield from statements(value)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_statement_grants_wildcard_actions_or_resources_it_could_name() -> None:
    found = list(statements(TEMPLATE["Resources"]))
    wildcard_actions = [s for s in found if any("*" in a for a in as_list(s["Action"]))]
    wildcard_resources = [
        s
        for s in found
        if "*" in as_list(s.get("Resource", []))
        and not set(as_list(s["Action"])) <= UNSCOPED_ACTIONS
    ]

    assert len(found) >= 20
    assert wildcard_actions == []
    assert wildcard_resources == []


def test_every_allowed_timeout_gives_the_work_queue_six_times_its_visibility() -> None:
    allowed = TEMPLATE["Parameters"]["FunctionTimeoutSeconds"]["AllowedValues"]
    visibility = TEMPLATE["Mappings"]["VisibilityForTimeout"]

    assert set(visibility) == set(allowed)
    assert all(visibility[t]["Seconds"] >= 6 * int(t) for t in allowed)
    assert TEMPLATE["Parameters"]["FunctionTimeoutSeconds"]["Default"] in allowed
