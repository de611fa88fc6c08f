"""Whether this machine can run the Spark engine: Java 17 or later and the Spark
environment (`make spark-venv`). The test of the Spark build and the benchmark both
ask here, and say why when they skip."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
SPARK_BIN = REPOSITORY / ".venv-spark" / "bin"
JAVA = 17  # pyspark 4.0's oldest Java


def java_version() -> int:
    """The major version of the `java` on PATH (0 without one)."""
    if shutil.which("java") is None:
        return 0
    shown = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    found = re.search(r'version "(\d+)', shown)
    return int(found.group(1)) if found else 0


def missing() -> str | None:
    """Why the Spark engine cannot run here, or None when it can."""
    if java_version() < JAVA:
        return f"no Java {JAVA} or later (Debian: openjdk-17-jre-headless)"
    if not (SPARK_BIN / "python").exists():
        return "no Spark environment (make spark-venv)"
    return None


def spark_env(spark_dir: Path, warehouse_dir: Path, as_of: date, **extra: str) -> dict[str, str]:
    """This process's environment with the Spark engine selected on a Spark warehouse
    (`spark_dir`) beside a pipeline warehouse, as of a date; `extra` variables win."""
    env = {
        **os.environ,
        "CUSTOMER_MARTS_ENGINE": "spark",
        "SPARK_DIR": str(spark_dir),
        "WAREHOUSE_DIR": str(warehouse_dir),
        "CUSTOMER_MARTS_AS_OF_DATE": as_of.isoformat(),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        **extra,
    }
    env.pop("DBT_TARGET", None)  # the engine picks the target
    return env
