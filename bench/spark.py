"""The cost of the Spark engine on one machine: the dbt project built on Spark in local
mode (spark/build.py: the raw tables copied in, every model, the CLV step, the marts
written out as Parquet) on a full run's DuckDB build, beside what DuckDB's dbt build
took in that run. Left out, saying why, where Java 17 or `.venv-spark` is missing."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from datetime import date
from pathlib import Path
from typing import Any

from spark.environment import REPOSITORY, SPARK_BIN, missing, spark_env

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 3600


def spark_build(build_db: Path, workdir: Path, as_of: date) -> dict[str, Any] | None:
    """Seconds of the Spark build on `build_db` (and of each of its steps); None when
    Spark cannot run here."""
    reason = missing()
    if reason is not None:
        log.warning("no Spark figure: %s", reason)
        return None
    shutil.rmtree(workdir, ignore_errors=True)
    (workdir / "warehouse").mkdir(parents=True)
    command = [
        str(SPARK_BIN / "python"),
        "-m",
        "spark.build",
        "--build-db",
        str(build_db),
        "--out",
        str(workdir / "marts"),
        "--target-path",
        str(workdir / "dbt" / "target"),
        "--log-path",
        str(workdir / "dbt" / "logs"),
    ]
    started = time.perf_counter()
    with (workdir / "spark-build.log").open("w") as output:
        done = subprocess.run(
            command,
            cwd=REPOSITORY,
            env=spark_env(workdir / "spark", workdir / "warehouse", as_of),
            stdout=subprocess.PIPE,
            stderr=output,
            text=True,
            timeout=TIMEOUT_SECONDS,
        )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"the Spark build failed: see {workdir / 'spark-build.log'}")
    steps = json.loads(done.stdout.strip().splitlines()[-1])
    return {"seconds": round(seconds, 2), "steps": steps}
