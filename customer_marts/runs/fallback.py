"""A run's outcome when the build database cannot take it (a full disk).

`start_run` sets aside a small file per run, `$WAREHOUSE_DIR/.outcome-<run_id>.json`,
filled with spaces while there is room. If a step fails and its failure cannot be
written into `build.duckdb` (the disk is full, the write fails), the outcome is
written over those spaces instead: rewriting blocks a file already has needs no
free space. The next run's start moves it into `audit.pipeline_runs` and deletes
the file, and `make run`'s summary reads it meanwhile. A run whose outcome reached
the build database deletes its file.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

RESERVED_BYTES = 16384
PREFIX = ".outcome-"


def path_of(warehouse_dir: Path, run_id: str) -> Path:
    return warehouse_dir / f"{PREFIX}{run_id}.json"


def reserve(warehouse_dir: Path, run_id: str) -> None:
    """Set aside the file the run's failure goes to if the build database is full."""
    path = path_of(warehouse_dir, run_id)
    try:
        with path.open("wb") as handle:
            handle.write(b" " * RESERVED_BYTES)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:  # already full: the log and the console still say it
        log.warning("could not set aside %s for the run's outcome: %s", path, exc)
        path.unlink(missing_ok=True)


def write(warehouse_dir: Path, run_id: str, step: str, message: str) -> Path | None:
    """Write a failed run's outcome into its reserved file; None if even that fails."""
    path = path_of(warehouse_dir, run_id)
    outcome = {"run_id": run_id, "status": "failed", "failed_step": step, "message": message}
    data = json.dumps(outcome).encode()
    while len(data) > RESERVED_BYTES:
        outcome["message"] = outcome["message"][: len(outcome["message"]) * 3 // 4]
        data = json.dumps(outcome).encode()
    try:
        with path.open("r+b" if path.exists() else "wb") as handle:
            handle.write(data.ljust(RESERVED_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        log.error("could not write the outcome of run %s to %s either: %s", run_id, path, exc)
        return None
    return path


def read(path: Path) -> dict | None:
    """The outcome in a fallback file; None while it is only reserved (or unreadable)."""
    try:
        text = path.read_text().strip()
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None


def pending(warehouse_dir: Path) -> dict[str, tuple[Path, dict | None]]:
    """Every fallback file by run id, with its outcome (None: only reserved)."""
    return {
        path.name.removeprefix(PREFIX).removesuffix(".json"): (path, read(path))
        for path in sorted(warehouse_dir.glob(f"{PREFIX}*.json"))
    }


def discard(warehouse_dir: Path, run_id: str) -> None:
    path_of(warehouse_dir, run_id).unlink(missing_ok=True)
