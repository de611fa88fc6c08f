"""The `airflow` command with less garbage collection: Airflow's own CLI, its output and
exit code, with the collector's thresholds raised and every object left at its end
frozen (never collected again before the process exits)."""

from __future__ import annotations

import gc
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest

from customer_marts.runs import airflow_command

COMMAND = [sys.executable, "-m", "customer_marts.runs.airflow_command"]
AIRFLOW = [str(Path(sys.executable).parent / "airflow")]


def run(command: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)


def test_it_answers_as_airflow_does_and_exits_with_its_code():
    ours, theirs = run(COMMAND, "dags", "tset"), run(AIRFLOW, "dags", "tset")
    assert ours.returncode == theirs.returncode == 2  # argparse's code for a wrong command
    assert ours.stderr == theirs.stderr and "invalid choice: 'tset'" in ours.stderr
    version = run(COMMAND, "version")
    assert version.returncode == 0
    import airflow

    assert version.stdout.strip() == airflow.__version__


def test_its_imports_and_the_objects_left_at_its_end_are_frozen(monkeypatch):
    thresholds = gc.get_threshold()
    gc.unfreeze()
    for args, fails in ((["version"], False), (["dags", "tset"], True)):
        monkeypatch.setattr(sys, "argv", ["airflow_command", *args])
        try:
            with pytest.raises(SystemExit) if fails else nullcontext():
                airflow_command.main()
            assert gc.get_freeze_count() > 0  # also when the command fails
            assert gc.get_threshold() == airflow_command.GC_THRESHOLDS
        finally:
            gc.unfreeze()
            gc.set_threshold(*thresholds)
