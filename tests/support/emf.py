"""A checker of CloudWatch Embedded Metric Format documents, from the specification.

Written from "Specification: Embedded metric format" (Amazon CloudWatch User
Guide): the root is a JSON object with an ``_aws`` metadata object holding a
``Timestamp`` (milliseconds since the epoch) and ``CloudWatchMetrics``, an
array of MetricDirectives; each directive has a ``Namespace`` string,
``Dimensions``, an array of DimensionSets (arrays of at most 30 strings), and
``Metrics``, an array of at most 100 MetricDefinitions (``Name``, optional
``Unit`` from CloudWatch's list, optional ``StorageResolution`` 1 or 60). Every
dimension and metric name is a member of the root: a dimension's value a
string, a metric's a number or an array of at most 100 numbers. Directive and
definition objects have no other members. The whole document is at most 1 MB.
"""

from __future__ import annotations

import json
from typing import Any

UNITS = frozenset(
    {
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    }
)
MAX_BYTES = 1_048_576


def emf_problems(line: str) -> list[str]:
    """Every way ``line`` breaks the specification; [] for a valid document."""
    if len(line.encode()) > MAX_BYTES:
        return ["larger than 1 MB"]
    try:
        doc = json.loads(line)
    except ValueError as error:
        return [f"not JSON: {error}"]
    if not isinstance(doc, dict):
        return ["root is not an object"]
    aws = doc.get("_aws")
    if not isinstance(aws, dict):
        return ["no _aws metadata object"]
    problems: list[str] = []
    stamp = aws.get("Timestamp")
    if not isinstance(stamp, int) or isinstance(stamp, bool) or stamp < 10**12:
        problems.append(f"_aws.Timestamp {stamp!r} is not epoch milliseconds")
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*problems, "_aws.CloudWatchMetrics is not a non-empty array"]
    for n, directive in enumerate(directives):
        problems += _directive(doc, directive, f"CloudWatchMetrics[{n}]")
    return problems


def _directive(doc: dict[str, Any], directive: Any, where: str) -> list[str]:
    if not isinstance(directive, dict):
        return [f"{where} is not an object"]
    problems = [
        f"{where} has unknown member {k!r}"
        for k in directive
        if k not in {"Namespace", "Dimensions", "Metrics"}
    ]
    namespace = directive.get("Namespace")
    if not isinstance(namespace, str) or not 1 <= len(namespace) <= 1024:
        problems.append(f"{where}.Namespace {namespace!r} is not a 1..1024 character string")
    dimensions = directive.get("Dimensions")
    if not isinstance(dimensions, list):
        problems.append(f"{where}.Dimensions is not an array")
        dimensions = []
    for dim_set in dimensions:
        if not isinstance(dim_set, list) or not all(isinstance(d, str) for d in dim_set):
            problems.append(f"{where}.Dimensions holds {dim_set!r}, not an array of strings")
            continue
        if len(dim_set) > 30:
            problems.append(f"{where}: a DimensionSet has more than 30 dimensions")
        for name in dim_set:
            if not isinstance(doc.get(name), str):
                problems.append(f"dimension {name!r} is not a string member of the root")
    metrics = directive.get("Metrics")
    if not isinstance(metrics, list) or not 1 <= len(metrics) <= 100:
        return [*problems, f"{where}.Metrics is not an array of 1..100 definitions"]
    for metric in metrics:
        problems += _metric(doc, metric, where)
    return problems


def _metric(doc: dict[str, Any], metric: Any, where: str) -> list[str]:
    if not isinstance(metric, dict) or not isinstance(metric.get("Name"), str):
        return [f"{where}.Metrics holds {metric!r}, not a definition with a Name"]
    name = metric["Name"]
    problems = [
        f"metric {name!r} has unknown member {k!r}"
        for k in metric
        if k not in {"Name", "Unit", "StorageResolution"}
    ]
    if "Unit" in metric and metric["Unit"] not in UNITS:
        problems.append(f"metric {name!r} has unit {metric['Unit']!r}")
    if metric.get("StorageResolution", 60) not in (1, 60):
        problems.append(f"metric {name!r} has StorageResolution {metric['StorageResolution']!r}")
    value = doc.get(name)
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > 100 or not all(_number(v) for v in values):
        problems.append(f"metric {name!r} is not a number (or up to 100) at the root: {value!r}")
    return problems


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
