"""The archive of every landed file: the durable source of truth for `raw`.

Files may leave `LANDING_DIR` once ingested (their rows stay in `raw`), so
`build.duckdb` would otherwise be the only copy of those rows. Before each ingest
commits, every file under `LANDING_DIR` that the archive does not hold yet is
copied into `$WAREHOUSE_DIR/archive/`:

    archive/<sha256[:2]>/<sha256>   the file's bytes, named by their SHA-256
    archive/manifest.jsonl          one line per (run, path, content) first seen:
                                    {"run_id", "path", "sha256", "bytes", "mtime_ns", "archived_at"}

A copy is written to a temporary name, fsynced and renamed, and only then is its
manifest line appended and fsynced: a line never names content the archive lacks.
The manifest is append-only; nothing in the archive is ever rewritten.

`recover()` (`make recover`) rebuilds a damaged `build.duckdb` from it: the
damaged file is moved aside, the run history (`audit.pipeline_runs`,
`audit.check_results`) is taken from `published.duckdb`, and the archived files
are ingested again run by run, in the order and with the run ids they were first
archived under, each time over the landing folder as it was then (every earlier
file at its path, latest content). The next run then builds the same marts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from customer_marts.config import Settings
from customer_marts.logs import log_progress
from customer_marts.runs import record
from customer_marts.runs.schema import ensure_schema
from customer_marts.warehouse import DatabaseDamaged, connect, fsync, sql_literal

log = logging.getLogger(__name__)

ARCHIVE_DIR = "archive"
MANIFEST = "manifest.jsonl"
CHUNK = 1 << 20
# Taken from the published file when build.duckdb is rebuilt (the rest is replayed).
HISTORY_TABLES = ("pipeline_runs", "check_results")


def archive_dir(settings: Settings) -> Path:
    return settings.warehouse_dir / ARCHIVE_DIR


def blob_path(root: Path, sha: str) -> Path:
    return root / sha[:2] / sha


def read_manifest(root: Path) -> list[dict]:
    """The manifest's entries, oldest first (a torn last line, from a kill, is skipped)."""
    path = root / MANIFEST
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            log.warning("skipping an incomplete line of %s", path)
    return entries


def _landing_files(landing_dir: Path) -> list[Path]:
    """Regular files under LANDING_DIR; links that lead out of it are not followed."""
    root = landing_dir.resolve()
    files = []
    for path in sorted(landing_dir.rglob("*")):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            continue
        if path.is_file():
            files.append(path)
    return files


def _copy_hashed(source: Path, temporary: Path) -> str:
    """Copy `source` to `temporary` (fsynced) and return the SHA-256 of what was copied."""
    digest = hashlib.sha256()
    with source.open("rb") as reader, temporary.open("wb") as writer:
        while chunk := reader.read(CHUNK):
            digest.update(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    return digest.hexdigest()


def store_landing(settings: Settings, run_id: str) -> int:
    """Archive every file of LANDING_DIR the archive does not hold yet; return how many.

    A file whose path, size and modification time match its latest manifest entry
    is not read again.
    """
    root = archive_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    known: dict[str, dict] = {}
    for entry in read_manifest(root):
        known[entry["path"]] = entry
    lines = []
    files = _landing_files(settings.landing_dir)
    for number, path in enumerate(files, 1):
        log_progress(log, "archiving the landing files", number, len(files))
        name = path.relative_to(settings.landing_dir).as_posix()
        stat = path.stat()
        latest = known.get(name)
        if latest and (latest["bytes"], latest["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns):
            continue
        temporary = root / f".incoming-{os.getpid()}"
        try:
            sha = _copy_hashed(path, temporary)
            blob = blob_path(root, sha)
            if blob.exists():
                temporary.unlink()
            else:
                blob.parent.mkdir(exist_ok=True)
                os.replace(temporary, blob)
                fsync(blob.parent)
        except OSError as exc:  # a bare write error names no file: say which
            raise OSError(exc.errno, f"{exc.strerror} (archiving {name} into {root})") from exc
        finally:
            temporary.unlink(missing_ok=True)
        if latest and latest["sha256"] == sha:  # touched, not changed
            latest = known[name] = {**latest, "mtime_ns": stat.st_mtime_ns}
            continue
        entry = {
            "run_id": run_id,
            "path": name,
            "sha256": sha,
            "bytes": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "archived_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        known[name] = entry
        lines.append(json.dumps(entry, ensure_ascii=False) + "\n")
    if lines:
        with (root / MANIFEST).open("a", encoding="utf-8") as manifest:
            manifest.writelines(lines)
            manifest.flush()
            os.fsync(manifest.fileno())
        log.info("archived %d new file(s) in %s", len(lines), root)
    return len(lines)


# ---------------------------------------------------------------- recovery


@dataclass
class Recovery:
    damaged: Path | None = None
    runs: int = 0
    files: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    history_from: Path | None = None
    left_out: list[str] = field(default_factory=list)  # files ingest refused, as originally


def _is_healthy(path: Path) -> bool:
    try:
        with connect(path, read_only=True) as con:
            con.execute("select count(*) from audit.pipeline_runs").fetchone()
            for (table,) in con.execute(
                "select schema_name || '.' || table_name from duckdb_tables() "
                "where schema_name = 'raw'"
            ).fetchall():
                con.execute(f"select * from {table}").fetchall()
    except (DatabaseDamaged, duckdb.Error):
        return False
    return True


def _take_history(build: duckdb.DuckDBPyConnection, published: Path) -> bool:
    """Copy the run history of the published file into the new build database."""
    try:
        build.execute(f"attach {sql_literal(published)} as history (read_only)")
    except duckdb.Error as exc:
        log.warning("cannot read the run history of %s: %s", published, exc)
        return False
    try:
        record.copy_history(build, "history", HISTORY_TABLES)
    finally:
        build.execute("detach history")
    return True


def _place(blob: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(blob, target)
    except OSError:
        shutil.copyfile(blob, target)


def recover(settings: Settings, force: bool = False) -> Recovery:
    """Rebuild build.duckdb from the archive (see the module docstring)."""
    from customer_marts.ingest.run import IngestError
    from customer_marts.ingest.run import ingest as ingest_files

    build, root = settings.build_db, archive_dir(settings)
    entries = read_manifest(root)
    if not entries:
        raise FileNotFoundError(f"no archive in {root}: nothing to recover {build} from")
    if build.exists() and not force and _is_healthy(build):
        raise RuntimeError(f"{build} opens and reads fine: use --force to rebuild it anyway")
    outcome = Recovery()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if build.exists():
        outcome.damaged = build.with_name(f"{build.name}.damaged-{stamp}")
        build.rename(outcome.damaged)
    wal = build.with_name(build.name + ".wal")
    if wal.exists():
        wal.rename(wal.with_name(f"{wal.name}.damaged-{stamp}"))
    with connect(build) as con:
        ensure_schema(con)
        if settings.published_db.exists() and _take_history(con, settings.published_db):
            outcome.history_from = settings.published_db
    staging = settings.warehouse_dir / f".recover-{stamp}"
    try:
        runs: dict[str, list[dict]] = {}
        for entry in entries:
            runs.setdefault(entry["run_id"], []).append(entry)
        for run_id, files in runs.items():
            for entry in files:
                _place(blob_path(root, entry["sha256"]), staging / entry["path"])
            while True:
                try:
                    ingest_files(build, staging, run_id)
                    break
                except IngestError as exc:
                    if not exc.failures:
                        raise
                    # refused when it was first ingested too: leave it out, as then
                    for _source, file_name, _reason in exc.failures:
                        (staging / file_name).unlink(missing_ok=True)
                        outcome.left_out.append(file_name)
            outcome.runs += 1
            outcome.files += len(files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    with connect(build, read_only=True) as con:
        for (table,) in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'raw' order by 1"
        ).fetchall():
            outcome.rows[table] = con.execute(f"select count(*) from raw.{table}").fetchone()[0]
    return outcome
