"""Ingest landed export files into the build database's `raw` tables.

For each source (the contract in `contract.py`, configured in `sources.yml`):
1. lists the files matching its globs in its landing folder (a link leading out of
   LANDING_DIR is not followed: a `skipped` manifest row says so) and fingerprints
   them (SHA-256); a file ingested earlier and now gone is noted on its manifest row
   and in the log (its rows stay);
2. skips content it has already ingested, under any name, and treats a known
   name with new content as a correction that replaces that file's earlier rows;
3. reads every new file with DuckDB's own readers, all columns as text, and maps
   the export's header onto the canonical columns (`landing.py`; a missing
   required column fails the run, naming the file and the columns found), checking
   each file's rows read against its own record count (`records.py`);
4. shapes the rows in SQL: collapses line items into one record per key when
   configured, derives columns (a preset's status rules), turns an e-mail into
   the salted customer key (CUSTOMER_KEY_SALT, refused when weak; there is no
   default) and drops the clear-text e-mail;
5. casts and checks every row in one set-based SQL pass: a row that breaks a
   rule goes to `audit.quarantine` with its line number, column and reason;
6. keeps one row per key (the latest file, then the latest line wins) and
   counts the others as duplicates;
7. writes one `audit.ingested_files` row per file, so that for every loaded
   file rows_read = rows_loaded + rows_quarantined + rows_duplicate, and the
   rows of `raw.<source>` are exactly the sum of rows_loaded;
8. records the customers whose raw rows it wrote or removed in
   `audit.changed_customers` (customer_marts/runs/changes.py): the customers the
   night's incremental dbt models recompute.

Steps 3-6 run batch by batch of files (about `checking.BATCH_BYTES` of input each),
outside the transaction and in temporary tables only, so that the text of one batch
is held at a time; step 6 runs over all of them. The writes then happen in one
transaction: a failing run leaves the raw tables as they were. Rows dated after the as-of date are loaded too; the dbt staging
models leave them out until a run whose as-of date covers them.

The steps live in `plan` (1-3, batched by `checking`), `shaping` (4), `rules` (5-6) and
`loading` (the writes, 7).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from customer_marts.ingest.loading import load_source
from customer_marts.ingest.plan import IngestError, plan_sources
from customer_marts.ingest.shaping import resolve_salt, salt_problem
from customer_marts.ingest.sources import SourceConfigError, SourcesConfig
from customer_marts.ingest.sources import load as load_sources
from customer_marts.runs import changes, manifest
from customer_marts.runs.schema import ensure_schema
from customer_marts.warehouse import connect

log = logging.getLogger(__name__)


@dataclass
class IngestSummary:
    files_loaded: int = 0
    files_skipped: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    files_gone: int = 0  # ingested earlier, no longer in LANDING_DIR (rows kept)
    customers_changed: int = 0  # (source, customer) rows of audit.changed_customers
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)


def ingest(
    build_db: Path,
    landing_dir: Path,
    run_id: str,
    sources: list[str] | None = None,
    config: SourcesConfig | None = None,
    salt: str | None = None,
) -> IngestSummary:
    """Ingest every new or changed file of the given sources (all by default).

    `config` defaults to sources.yml in CUSTOMER_MARTS_CONFIG_DIR; `salt` to
    CUSTOMER_KEY_SALT.
    """
    try:
        config = config or load_sources()
    except SourceConfigError as exc:
        raise IngestError(f"source configuration: {exc}") from exc
    salt = resolve_salt(salt)
    summary = IngestSummary()
    names = sources or list(config.sources)
    with connect(build_db) as con:
        ensure_schema(con)
        if salt and not salt_problem(salt):
            con.execute("set variable customer_key_salt = ?", [salt])
        # Read and check first, outside the transaction (a failed read would abort it) ...
        try:
            plans = plan_sources(con, landing_dir, config, names, run_id, salt)
        except IngestError as exc:
            _record_failure(con, run_id, exc)
            raise
        # ... then write everything in one transaction: a failure leaves raw as it was.
        con.execute("begin transaction")
        try:
            changes.start(con)
            for plan in plans:
                counts = load_source(con, plan, run_id)
                summary.by_source[plan.config.name] = counts
                for attr, value in counts.items():
                    setattr(summary, attr, getattr(summary, attr) + value)
            summary.customers_changed = changes.record(con, run_id)
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")
    log.info(
        "ingested %d file(s) (%d skipped): %d rows read, %d loaded, %d quarantined, %d duplicate",
        summary.files_loaded,
        summary.files_skipped,
        summary.rows_read,
        summary.rows_loaded,
        summary.rows_quarantined,
        summary.rows_duplicate,
    )
    return summary


def _record_failure(con: duckdb.DuckDBPyConnection, run_id: str, error: IngestError) -> None:
    """Keep a manifest row for each file that failed, outside the rolled-back load."""
    manifest.write_manifest(
        con,
        [
            manifest.manifest_row(source, file_name, None, run_id, status="failed", message=reason)
            for source, file_name, reason in error.failures
        ],
    )
