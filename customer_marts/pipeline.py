"""The nightly pipeline's steps, as plain functions.

The Airflow DAG calls one step per task; tests and benchmarks can call them
directly. Every step takes the run (`RunInfo`), does its work on the build
database, and records a failure in `audit.pipeline_runs` before re-raising it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime

from customer_marts.config import Settings
from customer_marts.ingest import IngestError
from customer_marts.quality import GateFailed
from customer_marts.transform import DbtFailure
from customer_marts.warehouse import connect, ensure_schema

log = logging.getLogger(__name__)

# Errors caused by the data or its checks, not by the machine: a retry cannot fix them.
DATA_ERRORS: tuple[type[Exception], ...] = (IngestError, GateFailed, DbtFailure)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    as_of_date: str  # YYYY-MM-DD
    airflow_run_id: str | None = None

    @property
    def as_of(self) -> date:
        return date.fromisoformat(self.as_of_date)

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunInfo:
        return cls(**data)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def start_run(settings: Settings, as_of: date, airflow_run_id: str | None = None) -> RunInfo:
    """Create the run's record (status `running`) and return its identity."""
    started = _now()
    run = RunInfo(f"{started:%Y%m%dT%H%M%S%f}Z", as_of.isoformat(), airflow_run_id)
    with connect(settings.build_db) as con:
        ensure_schema(con)
        con.execute(
            "insert into audit.pipeline_runs (run_id, airflow_run_id, logical_date, started_at, "
            "status) values (?, ?, ?, ?, 'running')",
            [run.run_id, airflow_run_id, as_of, started],
        )
    log.info("run %s for as-of date %s started", run.run_id, run.as_of_date)
    return run


def finish_run(
    settings: Settings,
    run: RunInfo,
    status: str,
    failed_step: str | None = None,
    message: str | None = None,
) -> None:
    with connect(settings.build_db) as con:
        con.execute(
            "update audit.pipeline_runs set status = ?, finished_at = ?, failed_step = ?, "
            "message = ? where run_id = ?",
            [status, _now(), failed_step, message, run.run_id],
        )


@contextmanager
def step(settings: Settings, run: RunInfo, name: str) -> Iterator[None]:
    """Record the step's failure in the run record, then let it propagate."""
    try:
        yield
    except BaseException as exc:
        finish_run(settings, run, "failed", failed_step=name, message=str(exc)[:4000])
        raise


def ingest(settings: Settings, run: RunInfo) -> dict:
    from customer_marts.ingest import ingest as ingest_files

    with step(settings, run, "ingest"):
        summary = ingest_files(settings.build_db, settings.landing_dir, run.run_id)
    return asdict(summary)


def validate(settings: Settings, run: RunInfo, layer: str) -> dict:
    from customer_marts import quality

    with step(settings, run, f"validate_{layer}"):
        results = quality.validate(settings, run.run_id, layer)
    return {
        status: sum(r.status == status for r in results)
        for status in ("passed", "warned", "failed")
    }


def build(settings: Settings, run: RunInfo) -> dict:
    from customer_marts import transform

    with step(settings, run, "dbt_build"):
        outcome = transform.build(settings, run.as_of)
    return {"nodes": outcome.nodes, "warnings": outcome.warnings}


def publish(settings: Settings, run: RunInfo) -> dict[str, int]:
    from customer_marts.publish import publish as publish_files

    with step(settings, run, "publish"):
        finish_run(settings, run, "success")
        counts = publish_files(
            settings.build_db, settings.published_db, run.run_id, settings.keep_versions
        )
    return counts


def run_all(settings: Settings, as_of: date) -> RunInfo:
    """The whole pipeline in this process, without Airflow (tests, benchmarks)."""
    run = start_run(settings, as_of)
    ingest(settings, run)
    validate(settings, run, "raw")
    build(settings, run)
    validate(settings, run, "marts")
    publish(settings, run)
    return run
