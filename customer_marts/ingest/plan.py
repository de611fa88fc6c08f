"""What a run ingests, found and read before the load transaction.

For each source: its files in LANDING_DIR (a link leading out of it is not followed),
fingerprinted (SHA-256); content already ingested under any name is skipped, a known
name with new content is a correction that replaces that file's earlier rows, and a
file ingested earlier and now gone is noted. The new files are landed and checked,
batch by batch (`checking`). Every unreadable file of every source is named at once,
in one IngestError.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from customer_marts.config import DEMO_MARKER
from customer_marts.ingest.checking import Checked, check_files
from customer_marts.ingest.reader import LandingFile
from customer_marts.ingest.rules import RowOptions
from customer_marts.ingest.shaping import salt_problem
from customer_marts.ingest.sources import SourceConfig, SourcesConfig
from customer_marts.ingest.sql import path_literal, reader_error
from customer_marts.logs import log_progress
from customer_marts.runs import manifest

log = logging.getLogger(__name__)

LINK_OUT = "a symbolic link to a file outside LANDING_DIR: not followed, not read"

GONE = "no longer in LANDING_DIR (its rows are kept)"

NOT_DEMO = "not written by the demo generator, beside the demo data (_demo.json)"


class IngestError(Exception):
    """A file the pipeline cannot read as the contract requires (the run fails)."""

    def __init__(self, message: str, failures: list[tuple[str, str, str]] | None = None):
        super().__init__(message)
        self.failures = failures or []  # (source, file name, reason) per failed file


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_files(landing_dir: Path, config: SourceConfig) -> tuple[list[Path], list[Path]]:
    """(the source's files, links among them that lead out of LANDING_DIR), by name.

    A file inside LANDING_DIR reached through a link is read; one outside it is not
    (the pipeline reads exports, not whatever a link points at)."""
    folder = landing_dir / config.folder
    found = {path for pattern in config.globs for path in folder.glob(pattern)}
    root = landing_dir.resolve()
    files, outside = [], []
    for path in sorted(found):
        if not path.resolve().is_relative_to(root):
            outside.append(path)
        elif path.is_file():
            files.append(path)
    return files, outside


def demo_files(landing_dir: Path) -> dict[str, str] | None:
    """{file name: sha256} the demo generator wrote, if LANDING_DIR holds the demo data."""
    marker = landing_dir / DEMO_MARKER
    if not marker.is_file():
        return None
    try:
        files = json.loads(marker.read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return files if isinstance(files, dict) else None


@dataclass
class Plan:
    """One source's work for this run, found and read before the load transaction."""

    config: SourceConfig
    files: list[LandingFile] = field(default_factory=list)  # new or changed, to load
    shas: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # manifest messages by file
    replaced: list[str] = field(default_factory=list)  # names whose earlier rows go
    manifest_rows: list[dict[str, object]] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {"files_loaded": 0, "files_skipped": 0, "files_gone": 0}
    )
    checked: Checked | None = None
    gone: list[str] = field(default_factory=list)  # loaded earlier, now missing
    back: list[str] = field(default_factory=list)  # noted missing earlier, present again


def plan_source(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    config: SourceConfig,
    run_id: str,
    salt: str | None,
    options: RowOptions | None = None,
) -> Plan:
    """Fingerprint the source's files, decide which to load, and land and check those.

    Raises IngestError naming every file that cannot be read.
    """
    plan = Plan(config)
    source = config.name
    files, outside = list_files(landing_dir, config)
    rows = manifest.known_files(con, source)
    known = {(name, sha): status for name, sha, status, _ in rows}
    loaded_shas = {sha: name for (name, sha), status in known.items() if status == "loaded"}
    loaded_names = {name for (name, _), status in known.items() if status == "loaded"}
    present = {path.relative_to(landing_dir).as_posix() for path in [*files, *outside]}
    noted = {name for name, _, status, message in rows if GONE in (message or "")}
    plan.gone = sorted(loaded_names - present - noted)
    plan.back = sorted(noted & present)
    plan.counts["files_gone"] = len(loaded_names - present)
    if loaded_names - present:
        missing = sorted(loaded_names - present)
        log.warning(
            "%s: %d file(s) ingested earlier are no longer in LANDING_DIR; their rows are "
            "kept: %s%s",
            source,
            len(missing),
            ", ".join(missing[:5]),
            ", ..." if len(missing) > 5 else "",
        )
    for path in outside:
        file_name = path.relative_to(landing_dir).as_posix()
        if (file_name, None) not in known:
            log.warning("%s: %s", file_name, LINK_OUT)
            plan.manifest_rows.append(
                manifest.manifest_row(
                    source, file_name, None, run_id, status="skipped", message=LINK_OUT
                )
            )
            plan.counts["files_skipped"] += 1
    demo = demo_files(landing_dir)
    for seq, path in enumerate(files):
        log_progress(log, f"reading {source}", seq + 1, len(files))
        file_name = path.relative_to(landing_dir).as_posix()
        sha = sha256_of(path)
        if (file_name, sha) in known:
            continue  # ingested (or skipped) in an earlier run: nothing to do
        if sha in loaded_shas:  # an earlier run's content, or a file of this run
            plan.manifest_rows.append(
                manifest.manifest_row(
                    source,
                    file_name,
                    sha,
                    run_id,
                    status="skipped",
                    message=f"same content as {loaded_shas[sha]}",
                )
            )
            plan.counts["files_skipped"] += 1
            continue
        plan.files.append(LandingFile(seq, path, file_name))
        plan.shas[file_name] = sha
        loaded_shas.setdefault(sha, file_name)
        if demo is not None and demo.get(file_name) != sha:
            log.warning("%s: %s", file_name, NOT_DEMO)
            plan.notes[file_name] = NOT_DEMO
    if not plan.files:
        return plan
    if config.hashes_email and (problem := salt_problem(salt)):
        raise IngestError(
            f"{source}: the customer key is the e-mail (customer_key: email) but {problem}. "
            'Set it to a long random secret, e.g. the output of python -c "import secrets; '
            'print(secrets.token_hex(32))" (docs/sources.md), and '
            "keep it: changing it changes every key.",
            [(source, file.name, f"{problem} (customer_key: email)") for file in plan.files],
        )
    # Corrections: a known name with new content replaces that file's rows.
    plan.replaced = [file.name for file in plan.files if file.name in loaded_names]
    plan.checked = check_files(con, config, plan.files, options or RowOptions())
    if plan.checked.errors:
        raise IngestError(
            "\n".join(str(error) for error in plan.checked.errors),
            [(source, error.file_name, error.reason) for error in plan.checked.errors],
        )
    return plan


def load_rates(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """The rates file as the temp table `rates` (currency, rate), or IngestError."""
    if not path.is_file():
        raise IngestError(f"rates_file {path} does not exist (sources.yml, rates_file)")
    try:
        con.execute(
            f"""
            create or replace temp table rates as
            select upper(trim(currency)) as currency, trim(rate) as rate_text,
                try_cast(trim(rate) as decimal(18, 8)) as rate
            from read_csv({path_literal(path)}, all_varchar = true, header = true)
            """
        )
    except duckdb.Error as exc:
        raise IngestError(
            f"rates_file {path}: cannot be read as a CSV with columns currency, rate "
            f"({reader_error(exc)})"
        ) from exc
    (bad,) = con.execute(
        "select count(*) from (select 1 from rates qualify currency is null or rate is null "
        "or rate <= 0 or count(*) over (partition by currency) > 1)"
    ).fetchone()
    if bad:
        raise IngestError(
            f"rates_file {path}: each currency needs one positive rate; {bad} row(s) have "
            "no currency, a rate that is not a positive number, or a repeated currency"
        )


def plan_sources(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    config: SourcesConfig,
    names: list[str],
    run_id: str,
    salt: str | None,
) -> list[Plan]:
    """Plan every source; fail naming every unreadable file of every source at once."""
    rates = config.rates_path(landing_dir)
    if rates is not None:
        load_rates(con, rates)
    plans, errors = [], []
    for name in names:
        try:
            options = RowOptions(
                config.sources[name].decimal_separator,
                config.reporting_currency,
                has_rates=config.rates_file is not None,
            )
            plans.append(plan_source(con, landing_dir, config.sources[name], run_id, salt, options))
        except IngestError as exc:
            errors.append(exc)
    if errors:
        raise IngestError(
            "\n".join(str(error) for error in errors),
            [failure for error in errors for failure in error.failures],
        )
    return plans
