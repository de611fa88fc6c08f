"""The nightly pipeline's steps, as plain functions, and the run record.

The Airflow DAG calls one step per task; tests and benchmarks can call them
directly. Every step takes the run (`RunInfo`), does its work on the build
database, and keeps `audit.pipeline_runs` up to date (docs/run-record.md):

- `start_run` inserts the run (status `running`) after marking any run still
  `running` as failed: with one writer (`max_active_runs=1`) such a run was
  killed or lost its machine, and is recorded failed in the step it was in;
- each step first records itself as the step in progress (`failed_step`), and
  on an exception records the run as failed with the message, then re-raises;
- `build` decides whether dbt rebuilds every model (`--full-refresh`) and records
  why in `audit.build_state` (customer_marts/runs/build_state.py), records
  `data_as_of`, the newest event date in the marts it built, and stages the dbt docs
  site;
- `publish` records the run as a success with its `published_version` in the
  copy that is about to be published, and in the build database once it is
  live: the published file holds its own run's record and every earlier run's,
  failed ones included, and a run killed during publish is never `success`
  unless its publish committed. The visual run report of the published build
  is rendered after that (customer_marts/report/; it never fails a run).

The row and check counts are computed from the audit tables whenever a run's
outcome is recorded, failed or not. A failure that cannot be written into the build
database (a full disk) goes to the run's fallback file (customer_marts/runs/fallback.py),
which the next run's start records.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime

import duckdb

from customer_marts.config import Settings
from customer_marts.gate.validate import GateFailed
from customer_marts.ingest.run import IngestError
from customer_marts.runs import build_state, fallback, record
from customer_marts.runs.locks import LockHeld, exclusive_lock
from customer_marts.runs.schema import ensure_schema
from customer_marts.transform.refresh import Refresh
from customer_marts.transform.runner import DbtFailure
from customer_marts.warehouse import DatabaseDamaged, DiskFull, connect, free_mb, is_disk_full

log = logging.getLogger(__name__)


class RunSuperseded(Exception):
    """A newer run has started since this run began: runs must not overlap."""


class RunInProgress(Exception):
    """Another run is working on the warehouse right now. A machine error (retried):
    the other run ends, by itself or by its timeout."""


# The steps of a run after start_run, in order: the DAG's task ids, `failed_step` and
# `completed_steps` in the run record.
STEPS = ("ingest", "validate_raw", "dbt_build", "validate_marts", "publish")
# Held by start_run and by every step while it works (docs/run-record.md): a run
# whose record says `running` is live if its step holds it, gone if it can be taken.
STEP_LOCK = ".step.lock"


@contextmanager
def _working(settings: Settings, run: RunInfo, name: str) -> Iterator[None]:
    """Hold the warehouse's step lock while `name` of `run` works."""
    holder = f"run {run.run_id} (as of {run.as_of_date}), step {name}, pid {os.getpid()}"
    try:
        with exclusive_lock(settings.warehouse_dir / STEP_LOCK, holder):
            yield
    except LockHeld as busy:
        raise RunInProgress(
            f"run {run.run_id} cannot start {name}: another run is working on "
            f"{settings.warehouse_dir} right now ({busy.holder or 'its note is missing'}; "
            f"lock {busy.path}). Runs on one warehouse must not overlap: this one is "
            "retried, and runs once the other has finished."
        ) from None


# Errors a retry cannot fix, so the task fails at once: caused by the data, its
# checks or the run's place in time; a damaged build database (it needs
# `make recover`); a full disk (nothing in the run frees space: a retry 5 minutes
# later fails the same way and only delays the alert that names the disk).
DATA_ERRORS: tuple[type[Exception], ...] = (
    IngestError,
    GateFailed,
    DbtFailure,
    RunSuperseded,
    DatabaseDamaged,
    DiskFull,
)


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


# Below this, a step's failure is taken for a full disk even when its error does not
# say so (dbt, unable to write its own target folder, only exits with code 2).
NEARLY_FULL_MB = 2.0


def _on_full_disk(settings: Settings, exc: BaseException) -> bool:
    free = free_mb(settings.warehouse_dir)
    return is_disk_full(exc) or (free is not None and free < NEARLY_FULL_MB)


def _disk_full(settings: Settings, name: str, exc: BaseException) -> DiskFull:
    """A step's error on a full disk, as DiskFull naming the step, the disk and the file."""
    lines = str(exc).splitlines() or [type(exc).__name__]
    detail = next((line for line in lines if is_disk_full(Exception(line))), lines[0])
    return DiskFull(
        f"{name}: no space left on the disk of {settings.warehouse_dir} "
        f"({free_mb(settings.warehouse_dir)} MB free): {detail.strip()[:600]}. "
        "published.duckdb is unchanged. Free space (or point WAREHOUSE_DIR to a larger "
        "disk), then rerun the run."
    )


def _record_interrupted(
    con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str, in_step: str | None, by: str
) -> None:
    """Record a run that stopped without an outcome; it failed unless its publish committed."""
    from customer_marts.publish.versions import current_version, version_path

    when = _now()
    if in_step == "publish":
        version = version_path(settings.warehouse_dir, run_id)
        current = current_version(settings.warehouse_dir, settings.published_db)
        if version == current:
            log.warning("run %s was interrupted after its publish committed", run_id)
            message = f"interrupted after its publish committed; recorded by run {by}"
            record.record_outcome(con, run_id, "success", when, None, message, version.name)
            record.complete_step(con, run_id, "publish")
            return
        version.unlink(missing_ok=True)  # renamed but never published
    log.warning("run %s was interrupted in step %s: recording it as failed", run_id, in_step)
    message = (
        f"interrupted in step {in_step or 'start_run'}: the run stopped without recording an "
        f"outcome (process killed, machine restarted or task stopped); recorded by run {by}"
    )
    record.record_outcome(con, run_id, "failed", when, in_step, message)


def start_run(settings: Settings, as_of: date, airflow_run_id: str | None = None) -> RunInfo:
    """Create the run's record (status `running`) and return its identity.

    It holds the step lock (STEP_LOCK) while it works. If another run's step holds it,
    that run is alive: RunInProgress, and nothing is recorded. Otherwise runs still
    `running` have no process left (killed, machine lost): they are recorded first,
    as failed in the step they were in.
    """
    started = _now()
    run = RunInfo(f"{started:%Y%m%dT%H%M%S%f}Z", as_of.isoformat(), airflow_run_id)
    with _working(settings, run, "start_run"), connect(settings.build_db) as con:
        ensure_schema(con)
        record.record_fallback_outcomes(con, settings.warehouse_dir)
        for run_id, in_step in record.running_runs(con):
            _record_interrupted(con, settings, run_id, in_step, run.run_id)
        record.insert_run(con, run.run_id, airflow_run_id, as_of, started)
    fallback.reserve(settings.warehouse_dir, run.run_id)
    log.info("run %s for as-of date %s started", run.run_id, run.as_of_date)
    return run


def finish_run(
    settings: Settings,
    run: RunInfo,
    status: str,
    failed_step: str | None = None,
    message: str | None = None,
    published_version: str | None = None,
    finished_at: datetime | None = None,
) -> None:
    """Record the run's outcome and its row and check counts in the build database."""
    with connect(settings.build_db) as con:
        record.record_outcome(
            con,
            run.run_id,
            status,
            finished_at or _now(),
            failed_step,
            message,
            published_version,
        )
    fallback.discard(settings.warehouse_dir, run.run_id)


def _refuse_if_superseded(con: duckdb.DuckDBPyConnection, run: RunInfo, name: str) -> None:
    """Stop a step of a run that a newer run has overtaken.

    The build database holds one run's state at a time. Runs of the DAG never overlap
    (max_active_runs=1), but a backfill started without `--max-active-runs 1`, or a
    task of an old run cleared after a newer run, would otherwise mix two runs'
    data: such a step fails, without retries, and says what to do instead.
    """
    newer = con.execute(
        "select run_id, logical_date from audit.pipeline_runs where started_at > "
        "(select started_at from audit.pipeline_runs where run_id = ?) "
        "order by started_at limit 1",
        [run.run_id],
    ).fetchone()
    if newer:
        raise RunSuperseded(
            f"run {run.run_id} (as of {run.as_of_date}) cannot run step {name}: run "
            f"{newer[0]} (as of {newer[1]}) started after it, and build.duckdb holds one "
            "run's state at a time. Rerun a date by clearing its whole DAG run (from "
            "start_run), and backfill with `--max-active-runs 1` (docs/operating.md)."
        )


@contextmanager
def step(settings: Settings, run: RunInfo, name: str) -> Iterator[None]:
    """Run a step: it holds the step lock while it works (RunInProgress if another run's
    step holds it), is recorded as in progress, and, once its work is done, in
    completed_steps (on failure: recorded as failed, and the error propagates)."""
    with _working(settings, run, name):
        with _recorded_step(settings, run, name):
            yield
        try:
            with connect(settings.build_db) as con:
                record.complete_step(con, run.run_id, name)
        except Exception as record_error:  # noqa: BLE001 - the work itself is done
            # the record then lacks the step, and make run reports the run as failed
            log.error("could not record step %s of run %s: %s", name, run.run_id, record_error)


@contextmanager
def _recorded_step(settings: Settings, run: RunInfo, name: str) -> Iterator[None]:
    """Record the step as in progress; on failure record it, then let the error propagate."""
    with connect(settings.build_db) as con:
        _refuse_if_superseded(con, run, name)
        record.enter_step(con, run.run_id, name)
    log.info("step %s started (run %s)", name, run.run_id)
    try:
        yield
    except BaseException as exc:
        full = _on_full_disk(settings, exc) and not isinstance(exc, DiskFull)
        error = _disk_full(settings, name, exc) if full else exc
        try:
            finish_run(settings, run, "failed", failed_step=name, message=str(error)[:4000])
        except Exception as record_error:  # noqa: BLE001 - the step's own error matters more
            log.error("could not record the failure of run %s: %s", run.run_id, record_error)
            kept = fallback.write(settings.warehouse_dir, run.run_id, name, str(error)[:4000])
            if kept:
                log.error("the failure is kept in %s; the next run records it", kept)
        if error is not exc:
            raise error from exc
        raise


def ingest(settings: Settings, run: RunInfo) -> dict:
    from customer_marts.ingest import archive
    from customer_marts.ingest.run import ingest as ingest_files

    with step(settings, run, "ingest"):
        archive.store_landing(settings, run.run_id)  # before the ingest can commit
        summary = ingest_files(settings.build_db, settings.landing_dir, run.run_id)
    return asdict(summary)


def validate(settings: Settings, run: RunInfo, layer: str) -> dict:
    from customer_marts.gate import validate as gate

    with step(settings, run, f"validate_{layer}"):
        results = gate.validate(settings, run.run_id, layer)
    return {
        status: sum(r.status == status for r in results)
        for status in ("passed", "warned", "failed")
    }


def record_data_as_of(settings: Settings, run: RunInfo) -> date | None:
    """Record the newest event date of the marts just built as the run's data_as_of."""
    with connect(settings.build_db) as con:
        return record.record_data_as_of(con, run.run_id)


def decide_refresh(
    settings: Settings, run: RunInfo, extra_vars: dict | None = None, forced: bool = False
) -> Refresh:
    """Whether the run's dbt build rebuilds every model, and why
    (customer_marts/transform/refresh.py), recorded in audit.build_state as the run's
    build, status `running`. `forced`: the DAG run's `full_refresh` param."""
    from customer_marts.transform.fingerprint import BuildInputs
    from customer_marts.transform.refresh import FULL_REFRESH_ENV, decide

    reasons = []
    if os.environ.get(FULL_REFRESH_ENV) == "1":
        reasons.append(f"asked for: {FULL_REFRESH_ENV}=1 (customer-marts run --full-refresh)")
    if forced:
        reasons.append("asked for: the DAG run's full_refresh param")
    inputs = BuildInputs.of(settings, extra_vars)
    with connect(settings.build_db) as con:
        last_success, latest = build_state.previous_builds(con)
        refresh = decide(inputs, run.as_of, last_success, latest, reasons)
        build_state.record_start(con, run.run_id, run.as_of, inputs, refresh)
    if refresh.full:
        log.info("dbt build with --full-refresh (every model rebuilt): %s", refresh.reason)
    else:
        log.info(
            "incremental dbt build: the same project, vars and sources as the last "
            "successful build (run %s, as of %s)",
            last_success.run_id,
            last_success.as_of,
        )
    return refresh


def _record_build_end(settings: Settings, run: RunInfo, status: str) -> None:
    """Record how the run's dbt build ended; a build state that cannot be written stays
    `running`, which the next build takes for an unfinished build."""
    try:
        with connect(settings.build_db) as con:
            build_state.record_end(con, run.run_id, status)
    except Exception as error:  # noqa: BLE001 - the build's own outcome matters more
        log.error("could not record the end (%s) of run %s's build: %s", status, run.run_id, error)


def build(
    settings: Settings, run: RunInfo, extra_vars: dict | None = None, full_refresh: bool = False
) -> dict:
    """dbt build (with `extra_vars` over the project's dbt vars; with `--full-refresh` when
    decide_refresh says so, `full_refresh` forcing it), then record data_as_of and, unless
    the published dbt docs site shows this very project and catalog (equal fingerprints:
    it is kept as it is), stage a new one for publish."""
    from customer_marts.publish.files import DOCS_DIR, staged_dir
    from customer_marts.transform import runner as transform
    from customer_marts.transform.docs_site import stage_docs_site

    with step(settings, run, "dbt_build"):
        refresh = decide_refresh(settings, run, extra_vars, forced=full_refresh)
        try:
            # dbt's unit tests test the code: an incremental build's code is the code of the
            # last successful build, which ran them (a change of code is a full rebuild)
            outcome = transform.build(
                settings,
                run.as_of,
                extra_vars,
                run_id=run.run_id,
                full_refresh=refresh.full,
                unit_tests=refresh.full,
            )
        except BaseException:
            _record_build_end(settings, run, "failed")
            raise
        _record_build_end(settings, run, "success")
        newest = record_data_as_of(settings, run)
        staged = staged_dir(settings.warehouse_dir, DOCS_DIR, run.run_id)
        stage_docs_site(settings, run.as_of, staged, extra_vars)
    return {
        "nodes": outcome.nodes,
        "warnings": outcome.warnings,
        "data_as_of": str(newest),
        "refresh_reason": refresh.reason,
    }


def publish(settings: Settings, run: RunInfo) -> dict[str, int]:
    """Publish; the run's success is recorded in the copy before it goes live, and in the
    build database once it is live, so a run killed during publish is never `success`."""
    from customer_marts.publish import wap
    from customer_marts.publish.versions import version_path

    version = version_path(settings.warehouse_dir, run.run_id).name
    finished = _now()

    def record_success(con: duckdb.DuckDBPyConnection) -> None:
        record.record_outcome(con, run.run_id, "success", finished, published_version=version)
        record.complete_step(con, run.run_id, "publish")  # the published copy's record is whole

    with step(settings, run, "publish"):
        counts = wap.publish(settings, run.run_id, record_success)
        finish_run(settings, run, "success", published_version=version, finished_at=finished)
    from customer_marts.report.page import write_run_report

    write_run_report(settings)  # the visual report of what is now published; never raises
    return counts


def run_all(settings: Settings, as_of: date, extra_vars: dict | None = None) -> RunInfo:
    """The whole pipeline in this process, without Airflow (tests, benchmarks)."""
    run = start_run(settings, as_of)
    ingest(settings, run)
    validate(settings, run, "raw")
    build(settings, run, extra_vars)
    validate(settings, run, "marts")
    publish(settings, run)
    return run
