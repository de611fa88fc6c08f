"""The CLV step as it was before the holdout check, the three purchase models and the
intervals, timed on the same build database as today's step.

BEFORE_COMMIT's CLV step was one BG/NBD + Gamma-Gamma fit and its predictions. Its dbt
project and package come out of the repository's history (`git archive`), and its CLV
models run with this environment's dbt on a copy of a run's build database, with the
defaults every dbt process of the pipeline gets (`dbt_process_defaults`: one OpenBLAS
thread) and its own dbt profile (which set no DuckDB memory limit then). So the two steps run on one machine in
one session, which a figure measured on another day cannot give (this machine's speed
varies by a third from day to day).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from customer_marts.transform.runner import dbt_executable, dbt_process_defaults

log = logging.getLogger(__name__)

BEFORE_COMMIT = "900ada8388d28377a8a399952ba23e8ff538cbba"
REPOSITORY = Path(__file__).resolve().parent.parent


def checkout(commit: str, destination: Path, repository: Path = REPOSITORY) -> bool:
    """`commit`'s files in `destination` (a fresh folder); False, saying why in the log,
    where git or the commit is not at hand (e.g. a copy of the project without its
    history)."""
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    try:
        archive = subprocess.run(
            ["git", "-C", str(repository), "archive", "--format=tar", commit],
            capture_output=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        log.warning("commit %s is not at hand (%s): no step before to compare", commit, error)
        return False
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive.stdout, check=True)
    return True


def clv_step_before(runs: dict[str, Any], pattern: re.Pattern) -> dict[str, Any] | None:
    """`dbt run` of BEFORE_COMMIT's models that `pattern` names, on a copy of the run's
    build database as of its as-of date: dbt's elapsed time and each model's seconds, as
    bench.harness.clv_step reports today's. None where the commit is not at hand."""
    root = runs["workdir"] / "clv_before"
    source = root / "source"
    if not (source / "dbt_project").is_dir() and not checkout(BEFORE_COMMIT, source):
        return None
    warehouse = root / "warehouse"
    warehouse.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(runs["warehouse"] / "build.duckdb", warehouse / "build.duckdb")
    project = source / "dbt_project"
    names = sorted(
        path.stem
        for path in (project / "models").rglob("*")
        if path.suffix in {".sql", ".py"} and pattern.search(path.stem)
    )
    env = {
        **os.environ,
        "WAREHOUSE_DIR": str(warehouse),
        "PYTHONPATH": str(source),  # its dbt Python models import its package
        **dbt_process_defaults(),
    }
    target = warehouse / "target"
    command = [
        dbt_executable(),
        "run",
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
        "--target-path",
        str(target),
        "--log-path",
        str(warehouse / "logs"),
        # that commit passed the as-of date as a var
        "--vars",
        json.dumps({"as_of_date": runs["as_of"].isoformat()}),
        "--select",
        *names,
    ]
    with (warehouse / "dbt.log").open("w") as output:
        code = subprocess.run(
            command, cwd=warehouse, env=env, stdout=output, stderr=subprocess.STDOUT
        ).returncode
    (warehouse / "build.duckdb").unlink()
    if code != 0:
        raise RuntimeError(f"the CLV step of {BEFORE_COMMIT[:7]} failed; see {warehouse}/dbt.log")
    return {"commit": BEFORE_COMMIT[:7], **step_figures(target / "run_results.json")}


def step_figures(run_results: Path) -> dict[str, Any]:
    """A `dbt run`'s elapsed time (without dbt's start-up) and each model's seconds."""
    results = json.loads(run_results.read_text())
    return {
        "seconds": round(float(results["elapsed_time"]), 2),
        "models": {
            node["unique_id"].split(".")[-1]: round(float(node["execution_time"]), 2)
            for node in results["results"]
        },
    }
