"""The kept published versions (`published-<run_id>.duckdb`): their names, which one is
published, pruning, and the run record each holds.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from customer_marts.config import Settings
from customer_marts.warehouse import connect

log = logging.getLogger(__name__)

VERSION_PREFIX = "published-"


RECORD_DATES = ("logical_date", "data_as_of")  # data_as_of is absent in versions before it


def run_record(con: duckdb.DuckDBPyConnection, run_id: str) -> dict:
    """A run's row of audit.pipeline_runs as a dict ({} if absent); any schema version."""
    cursor = con.execute("select * from audit.pipeline_runs where run_id = ?", [run_id])
    names = [column[0] for column in cursor.description]
    return dict(zip(names, cursor.fetchone() or (), strict=False))


def version_path(warehouse_dir: Path, run_id: str) -> Path:
    return warehouse_dir / f"{VERSION_PREFIX}{run_id}.duckdb"


def run_id_of(version: Path) -> str:
    return version.name.removeprefix(VERSION_PREFIX).removesuffix(".duckdb")


def list_versions(warehouse_dir: Path) -> list[Path]:
    """Published versions, oldest first (run ids sort by start time)."""
    return sorted(warehouse_dir.glob(f"{VERSION_PREFIX}*.duckdb"))


def current_version(warehouse_dir: Path, published: Path) -> Path | None:
    """The version `published` currently is (same inode), if any."""
    if not published.exists():
        return None
    inode = published.stat().st_ino
    return next((v for v in list_versions(warehouse_dir) if v.stat().st_ino == inode), None)


def prune(warehouse_dir: Path, keep: int, published: Path) -> list[Path]:
    """Delete versions beyond the newest `keep`, never the one currently published."""
    current = published.stat().st_ino if published.exists() else None
    versions = list_versions(warehouse_dir)
    removed = []
    for version in versions[: max(0, len(versions) - keep)]:
        if version.stat().st_ino != current:
            version.unlink()
            removed.append(version)
    return removed


def resolve_version(warehouse_dir: Path, ref: str) -> Path:
    """A kept version from a run id, a file name or a path; raise naming the choices."""
    name = Path(ref).name
    candidates = [warehouse_dir / name, version_path(warehouse_dir, name)]
    for candidate in candidates:
        if candidate.name.startswith(VERSION_PREFIX) and candidate.is_file():
            return candidate
    kept = ", ".join(run_id_of(v) for v in list_versions(warehouse_dir)) or "none"
    raise FileNotFoundError(f"no published version {ref!r} in {warehouse_dir}; kept: {kept}")


def previous_version(warehouse_dir: Path, published: Path) -> Path:
    """The kept version just before the one currently published."""
    versions = list_versions(warehouse_dir)
    current = current_version(warehouse_dir, published)
    index = versions.index(current) if current in versions else len(versions)
    if index == 0:
        raise FileNotFoundError(f"no version older than the published one in {warehouse_dir}")
    return versions[index - 1]


def describe_versions(settings: Settings) -> list[dict]:
    """Every kept version with its run's dates, oldest first, marking the published one."""
    current = current_version(settings.warehouse_dir, settings.published_db)
    rows = []
    for version in list_versions(settings.warehouse_dir):
        info = {
            "version": version.name,
            "run_id": run_id_of(version),
            "is_published": version == current,
            "size_mb": round(version.stat().st_size / 1e6, 1),
        }
        try:
            with connect(version, read_only=True) as con:
                record = run_record(con, info["run_id"])
        except duckdb.Error as exc:  # an unreadable version is still listed
            log.warning("cannot read the run record of %s: %s", version.name, exc)
            record = {}
        for key in RECORD_DATES:
            info[key] = str(record[key]) if record.get(key) else None
        rows.append(info)
    return rows
