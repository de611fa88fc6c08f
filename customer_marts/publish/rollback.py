"""Rollback: re-point `published.duckdb` (and the Parquet export) to a kept version with
the same atomic rename as publish.
"""

from __future__ import annotations

import logging
from pathlib import Path

from customer_marts.config import Settings
from customer_marts.publish.files import PARQUET_DIR, point_to, staged_dir, swap_directory
from customer_marts.publish.parquet import PARQUET_MANIFEST, export_parquet
from customer_marts.publish.versions import run_id_of

log = logging.getLogger(__name__)


def rollback(settings: Settings, version: Path) -> None:
    """Re-point published.duckdb (and the Parquet export) to a kept version, atomically.

    The version's Parquet set is reused if it is still kept, else exported again
    before anything is re-pointed.
    """
    warehouse = settings.warehouse_dir
    staged = staged_dir(warehouse, PARQUET_DIR, run_id_of(version))
    if settings.export_parquet and not (staged / PARQUET_MANIFEST).exists():
        export_parquet(version, staged, run_id_of(version))
    point_to(version, settings.published_db)
    log.info("published.duckdb now points to %s", version.name)
    if settings.export_parquet:
        swap_directory(staged, warehouse / PARQUET_DIR)
        log.info("%s now holds the marts of %s", warehouse / PARQUET_DIR, version.name)
