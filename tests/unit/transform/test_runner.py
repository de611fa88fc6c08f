"""The dbt child process's environment (customer_marts.transform.runner.run_dbt)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from customer_marts.config import Settings
from customer_marts.transform import runner


@pytest.fixture
def child_env(tmp_path, monkeypatch):
    """run_dbt with a stand-in `dbt`, a real child process that writes the environment it
    was started with."""
    seen = tmp_path / "env.txt"
    script = tmp_path / "dbt"
    script.write_text(f"#!/bin/sh\nenv > {seen}\n")
    script.chmod(0o755)
    monkeypatch.setattr(runner, "dbt_executable", lambda: str(script))
    settings = replace(Settings.from_env(), warehouse_dir=tmp_path / "warehouse")

    def run() -> dict[str, str]:
        code, _ = runner.run_dbt(settings, "run", date(2025, 12, 31))
        assert code == 0
        return dict(line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line)

    return run


def test_dbt_runs_with_one_openblas_thread(child_env, monkeypatch):
    monkeypatch.delenv(runner.BLAS_THREADS_ENV, raising=False)
    env = child_env()
    assert env[runner.BLAS_THREADS_ENV] == "1"
    assert env[runner.AS_OF_ENV] == "2025-12-31"


def test_an_openblas_setting_of_the_user_wins(child_env, monkeypatch):
    monkeypatch.setenv(runner.BLAS_THREADS_ENV, "3")
    assert child_env()[runner.BLAS_THREADS_ENV] == "3"
