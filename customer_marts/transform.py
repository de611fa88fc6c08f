"""Run dbt (in process, through dbt's programmatic runner) against the build database."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from customer_marts.config import Settings
from customer_marts.warehouse import connect

log = logging.getLogger(__name__)

FAILING_ROWS_SHOWN = 5


class DbtFailure(Exception):
    """dbt build failed: a model errored or a test of severity error failed."""


@dataclass
class DbtOutcome:
    success: bool
    nodes: int = 0
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)


def dbt_args(settings: Settings, command: str, as_of: date, extra_vars: dict | None = None) -> list[str]:
    """CLI arguments for a dbt command on this project, with the run's vars."""
    dbt_dir = settings.warehouse_dir / "dbt"
    run_vars = {"as_of_date": as_of.isoformat(), **(extra_vars or {})}
    return [
        command,
        "--project-dir", str(settings.dbt_project_dir),
        "--profiles-dir", str(settings.dbt_project_dir),
        "--target-path", str(dbt_dir / "target"),
        "--log-path", str(dbt_dir / "logs"),
        "--vars", json.dumps(run_vars),
    ]


def run_dbt(settings: Settings, command: str, as_of: date, *args: str,
            extra_vars: dict | None = None) -> Any:
    """Invoke dbt in this process; return dbt's result object."""
    from dbt.cli.main import dbtRunner  # heavy: imported only when dbt runs

    os.environ["WAREHOUSE_DIR"] = str(settings.warehouse_dir)
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    arguments = [*dbt_args(settings, command, as_of, extra_vars), *args]
    log.info("dbt %s", " ".join(arguments))
    return dbtRunner().invoke(arguments)


def _failing_rows(build_db: Path, compiled_sql: str | None) -> str:
    """The first failing rows of a test, for the error message."""
    if not compiled_sql:
        return ""
    try:
        with connect(build_db, read_only=True) as con:
            cursor = con.execute(f"select * from ({compiled_sql}) limit {FAILING_ROWS_SHOWN}")
            names = [column[0] for column in cursor.description]
            rows = [dict(zip(names, row)) for row in cursor.fetchall()]
    except Exception as exc:  # noqa: BLE001 - the message is a convenience
        return f" (failing rows not available: {exc})"
    return f"; failing rows: {rows}" if rows else ""


def build(settings: Settings, as_of: date, extra_vars: dict | None = None) -> DbtOutcome:
    """`dbt build` (models and their tests). Raises DbtFailure naming what failed."""
    result = run_dbt(settings, "build", as_of, extra_vars=extra_vars)
    outcome = DbtOutcome(success=bool(result.success))
    failed_tests: list[tuple[str, str, str | None]] = []
    for node_result in getattr(result.result, "results", None) or []:
        node = node_result.node
        status = str(node_result.status)
        outcome.nodes += 1
        outcome.results.append({
            "name": node.name, "resource_type": str(node.resource_type), "status": status,
            "failures": node_result.failures, "message": node_result.message,
        })
        if status in ("error", "fail"):
            failed_tests.append((node.name, node_result.message or status,
                                 getattr(node, "compiled_code", None)))
        elif status == "warn":
            outcome.warnings.append(f"{node.name}: {node_result.message}")
    if result.exception is not None:
        raise DbtFailure(f"dbt build could not run: {result.exception}")
    for name, message, compiled in failed_tests:
        outcome.failures.append(f"{name}: {message}{_failing_rows(settings.build_db, compiled)}")
    if not outcome.success:
        details = "\n".join(f"  - {failure}" for failure in outcome.failures) or "  (see dbt log)"
        raise DbtFailure(f"dbt build failed ({len(outcome.failures)} node(s)):\n{details}")
    log.info("dbt build: %d nodes, %d warnings", outcome.nodes, len(outcome.warnings))
    return outcome
