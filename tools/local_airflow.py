"""The environment of an `airflow` command run on this machine."""

from __future__ import annotations

import os
from pathlib import Path

from customer_marts.config import PROJECT_ROOT


def local_airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of an `airflow` command run on this machine (`make run`, tests,
    benchmarks): the project's DAGs, SQLite metadata in `home`, no example DAGs."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        **extra,
    }
