"""The one place where the pipeline reads its environment.

Every setting is an environment variable with a documented default
(docs/configuration.md). Relative paths are resolved against the project root,
so the DAG, the scripts and the tests see the same files whatever their
working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_MARKER = "_demo.json"
# The landing folder when LANDING_DIR is unset: the only one `make run` fills with the
# demo data by itself (anywhere else an empty or missing folder is an error).
DEFAULT_LANDING_DIR = "data/landing"


def _path(name: str, default: str) -> Path:
    path = Path(os.environ.get(name) or default)
    return path if path.is_absolute() else (PROJECT_ROOT / path)


def config_dir() -> Path:
    """The site configuration (sources.yml, presets.yml): CUSTOMER_MARTS_CONFIG_DIR,
    default `config/` at the project root. The user's folder, never the package's."""
    return _path("CUSTOMER_MARTS_CONFIG_DIR", "config")


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r} is not a number") from exc


def _bool(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={raw!r} is not a boolean (use 1 or 0)")


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one process. Build it with `Settings.from_env()`."""

    landing_dir: Path
    warehouse_dir: Path
    dbt_project_dir: Path
    expectations_dir: Path
    max_quarantine_pct: float
    keep_versions: int
    # CUSTOMER_KEY_SALT: salt of the customer key hashed from e-mails (docs/sources.md);
    # a secret, so it has no default.
    customer_key_salt: str | None = None
    # keyword-only with a default: fields added after it need no default
    export_parquet: bool = field(default=True, kw_only=True)
    # The quality gate: the newest row may be at most FRESHNESS_DAYS older than the
    # as-of date; a table's row count may move at most VOLUME_TOLERANCE_PCT from the
    # previous successful run's (docs/quality-gate.md).
    freshness_days: int = field(default=3, kw_only=True)
    volume_tolerance_pct: float = field(default=50.0, kw_only=True)
    # Validation results and Data Docs pages kept per suite: the newest KEEP_QUALITY_RUNS
    # runs' (gate/retention.py).
    keep_quality_runs: int = field(default=30, kw_only=True)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            landing_dir=_path("LANDING_DIR", DEFAULT_LANDING_DIR),
            warehouse_dir=_path("WAREHOUSE_DIR", "data/warehouse"),
            dbt_project_dir=_path("DBT_PROJECT_DIR", "dbt_project"),
            expectations_dir=_path("EXPECTATIONS_DIR", "expectations"),
            max_quarantine_pct=_float("MAX_QUARANTINE_PCT", 1.0),
            keep_versions=max(1, int(_float("KEEP_VERSIONS", 7))),
            customer_key_salt=os.environ.get("CUSTOMER_KEY_SALT") or None,
            export_parquet=_bool("EXPORT_PARQUET", True),
            freshness_days=int(_float("FRESHNESS_DAYS", 3)),
            volume_tolerance_pct=_float("VOLUME_TOLERANCE_PCT", 50.0),
            keep_quality_runs=max(1, int(_float("KEEP_QUALITY_RUNS", 30))),
        )

    @property
    def build_db(self) -> Path:
        """The only database the pipeline writes to."""
        return self.warehouse_dir / "build.duckdb"

    @property
    def published_db(self) -> Path:
        """What BI tools read; replaced atomically by each successful run."""
        return self.warehouse_dir / "published.duckdb"

    @property
    def landing_is_default(self) -> bool:
        """Whether LANDING_DIR is the default folder (unset, or set to that folder)."""
        return self.landing_dir.resolve() == (PROJECT_ROOT / DEFAULT_LANDING_DIR).resolve()

    def default_run_date(self) -> date:
        """RUN_DATE, else yesterday in UTC."""
        return env_run_date() or (datetime.now(UTC).date() - timedelta(days=1))


def env_run_date() -> date | None:
    """RUN_DATE as a date, or None when it is unset."""
    raw = os.environ.get("RUN_DATE")
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"RUN_DATE={raw!r} is not a date in YYYY-MM-DD form") from exc
