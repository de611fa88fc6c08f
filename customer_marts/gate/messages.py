"""What a check says: its name, observed value and details from a GE result, and
its message.

A check may be named by `meta.check`; otherwise it is named `<expectation type>(<column>)`.
A check that does not pass is explained by `meta.message`, when it has one: a sentence
whose `{name}` placeholders take the values of the check's first failing row (a query
check) or `{observed}`, the observed value (a metric check such as a row count).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from customer_marts.warehouse import connect

DETAIL_VALUES = 5


class _KeepMissing(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def explain(template: str, values: dict[str, Any]) -> str:
    """A check's meta.message with its `{name}` placeholders filled from `values`."""
    shown = {name: "none" if value is None else value for name, value in values.items()}
    return template.format_map(_KeepMissing(shown))


def first_failing_row(path: Path, sql: str) -> dict[str, Any]:
    """The first row a failed query check returns (empty if it cannot be read)."""
    try:
        with connect(path, read_only=True) as con:
            rows = con.sql(f"select * from ({sql}) limit 1").to_dicts()
    except duckdb.Error:
        return {}
    return rows[0] if rows else {}


def describe_result(result: Any) -> tuple[str, str | None, str | None]:
    """(check name, observed value, details) for one GE expectation result."""
    config = result.expectation_config
    column = config.kwargs.get("column")
    check = (config.meta or {}).get("check") or (
        f"{config.type}({column})" if column else config.type
    )
    body = result.result or {}
    error = exception_message(result.exception_info)
    if error:
        return check, None, f"error: {error}"
    if "observed_value" in body:
        return check, json.dumps(body["observed_value"], default=str), None
    if "unexpected_count" in body:
        observed = f"{body['unexpected_count']} of {body.get('element_count')} rows unexpected"
        values = body.get("partial_unexpected_list") or []
        details = (
            f"failing values: {json.dumps(values[:DETAIL_VALUES], default=str)}"
            if (values and not result.success)
            else None
        )
        return check, observed, details
    return check, None, None


def exception_message(info: dict | None) -> str | None:
    """The error of a check that could not be evaluated. GE reports it either flat
    ({"raised_exception": True, "exception_message": ...}) or, when a metric failed,
    keyed by the metric's id."""
    if not info:
        return None
    if "exception_message" in info or "raised_exception" in info:
        return info.get("exception_message") if info.get("raised_exception") else None
    for value in info.values():
        if isinstance(value, dict) and value.get("exception_message"):
            return value["exception_message"]
    return None
