"""`make airflow` (tools/airflow_ui.py) where it stops before starting anything: a port
already taken, a port that is not a number, `--help`. Nothing may be initialised then.
The real start, a triggered run and Ctrl-C are in tests/e2e/test_scheduler.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from customer_marts.config import PROJECT_ROOT

BIN = Path(sys.executable).parent


def run_ui(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    inherited = {key: value for key, value in os.environ.items() if key != "AIRFLOW_PORT"}
    environment = {**inherited, "AIRFLOW_HOME": str(home), **env}
    return subprocess.run(
        [str(BIN / "python"), "-m", "tools.airflow_ui", *args],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def taken_port():
    """A port on 127.0.0.1 with a listener on it (as another server would have)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("how", ["option", "environment"])
def test_a_taken_port_is_refused_at_once_naming_it(tmp_path, taken_port, how):
    home = tmp_path / "airflow_home"
    if how == "option":
        result = run_ui(home, "--port", str(taken_port))
    else:
        result = run_ui(home, AIRFLOW_PORT=str(taken_port))
    assert result.returncode == 2, result.stdout + result.stderr
    message = result.stderr
    assert f"127.0.0.1:{taken_port} is already in use" in message
    assert "AIRFLOW_PORT" in message  # how to choose another one
    assert not home.exists()  # nothing initialised, nothing started


@pytest.mark.parametrize("port", ["eighty", "0", "70000"])
def test_a_port_that_is_no_port_is_refused_naming_the_setting(tmp_path, port):
    home = tmp_path / "airflow_home"
    result = run_ui(home, AIRFLOW_PORT=port)
    assert result.returncode == 2
    assert "AIRFLOW_PORT" in result.stderr and repr(port) in result.stderr
    assert not home.exists()


def test_help_does_nothing_but_explain(tmp_path):
    home = tmp_path / "airflow_home"
    result = run_ui(home, "--help")
    assert result.returncode == 0, result.stderr
    for words in ("api-server", "scheduler", "dag-processor", "AIRFLOW_PORT", "Ctrl-C"):
        assert words in result.stdout
    assert not home.exists()


def test_make_airflow_runs_the_module():
    dry_run = subprocess.run(
        ["make", "-n", "airflow"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert "-m tools.airflow_ui" in dry_run.stdout
