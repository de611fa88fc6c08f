"""The `customer-marts` command line: `--help` of every command does no work, `status`
reads a real warehouse, and the command line's imports of the tooling stay inside the
functions that use it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from customer_marts.cli import COMMANDS, main
from customer_marts.config import PROJECT_ROOT
from tests.conftest import DEMO_AS_OF, copy_warehouse

CLI = PROJECT_ROOT / "customer_marts" / "cli"
USAGE = {
    "run": ["--as-of-date", "--landing-dir", "--warehouse-dir", "--full-refresh", "--demo"],
    "status": ["--warehouse-dir", "--runs"],
    "rollback": ["--previous", "version"],
    "report": ["--published", "--out"],
    "docs": ["--port", "--regenerate"],
    "validate-config": ["--config-dir"],
    "demo": ["--out", "--orders", "--seed"],
    "recover": ["--force"],
}


def files_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


def test_every_command_is_tested():
    assert set(USAGE) == set(COMMANDS)


@pytest.mark.parametrize("command", [[], *([name] for name in USAGE)])
def test_help_does_no_work(command, tmp_path):
    """`--help` exits 0 with the usage text at once, writing nothing: not in the folders
    the command would work on, nor in the project's own data and Airflow home."""
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "LANDING_DIR": str(work / "landing"),
        "WAREHOUSE_DIR": str(work / "warehouse"),
        "AIRFLOW_HOME": str(work / "airflow_home"),
        "CUSTOMER_MARTS_CONFIG_DIR": str(work / "config"),
    }
    watched = [PROJECT_ROOT / "data", PROJECT_ROOT / "airflow_home"]
    before = {folder: files_under(folder) for folder in watched}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "customer_marts", *command, "--help"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: customer-marts {' '.join(command)}".rstrip())
    for option in USAGE.get(command[0], []) if command else list(USAGE):
        assert option in result.stdout
    assert files_under(work) == []
    assert {folder: files_under(folder) for folder in watched} == before
    # a real run takes minutes (Airflow alone needs ~15 s to start): help takes ~0.3 s
    assert seconds < 10


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "customer-marts"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "validate-config" in result.stdout


def test_the_run_help_says_what_full_refresh_does(capsys):
    with pytest.raises(SystemExit) as done:
        main(["run", "--help"])
    assert done.value.code == 0
    assert "rebuild every model" in " ".join(capsys.readouterr().out.split())


def test_status_lists_the_run_and_the_published_version(published_demo, tmp_path, capsys):
    warehouse = copy_warehouse(published_demo, tmp_path / "warehouse")
    # The published version, found on disk: the version file published.duckdb is a
    # hard link of (not from the run record the command reads).
    [version] = [
        path
        for path in warehouse.glob("published-*.duckdb")
        if path.stat().st_ino == (warehouse / "published.duckdb").stat().st_ino
    ]
    run_id = version.stem.removeprefix("published-")
    assert main(["status", "--warehouse-dir", str(warehouse)]) == 0
    output = capsys.readouterr().out
    [row] = [line for line in output.splitlines() if line.strip().startswith(run_id)]
    assert row.split()[:3] == [run_id, DEMO_AS_OF.isoformat(), "success"]
    assert row.split()[-1] == version.name
    assert f"last 1 run(s) in {warehouse / 'build.duckdb'}" in output
    assert f"(version {version.name}; as-of date {DEMO_AS_OF}" in output
    assert "marts.fct_orders" in output


def test_status_of_an_empty_warehouse(tmp_path, capsys):
    assert main(["status", "--warehouse-dir", str(tmp_path / "none")]) == 0
    assert "no runs yet" in capsys.readouterr().out


def tooling_imports(path: Path) -> list[tuple[str, bool]]:
    """Each import of tools/ or bench/ in a module: (module, at module level)."""
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [
            (n, id(node) in top_level) for n in names if n.split(".")[0] in ("tools", "bench")
        ]
    return found


def test_the_command_line_imports_the_tooling_only_where_it_is_used():
    """The demo data, its as-of date and the local Airflow home are tooling (tools/):
    the command line imports them inside the functions of `run`, `demo` and `docs`,
    never at module level (so `status`, `rollback`, ... work without tools/) and never
    bench/."""
    found = {path.name: tooling_imports(path) for path in CLI.glob("*.py")}
    assert all(not at_top for imports in found.values() for _, at_top in imports)
    assert not any(name.startswith("bench") for imports in found.values() for name, _ in imports)
    assert {name for name, imports in found.items() if imports} == {
        "run.py",
        "demo_data.py",
        "docs.py",
    }


def test_status_while_a_step_holds_the_build_database(published_demo, tmp_path):
    """A running step holds build.duckdb (DuckDB's file lock): status reads the run
    record published with the last successful run instead, and says so."""
    import duckdb

    warehouse = copy_warehouse(published_demo, tmp_path / "warehouse")
    with duckdb.connect(str(warehouse / "build.duckdb")):  # the write lock, as a step has it
        result = subprocess.run(
            [sys.executable, "-m", "customer_marts", "status", "--warehouse-dir", str(warehouse)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr
    assert f"{warehouse / 'build.duckdb'} is in use by a running step" in result.stdout
    assert f"in {warehouse / 'published.duckdb'} (audit.pipeline_runs)" in result.stdout
    assert " success " in result.stdout


def test_report_renders_the_published_build(published_demo, tmp_path, capsys):
    warehouse = copy_warehouse(published_demo, tmp_path / "warehouse")
    out = tmp_path / "report"
    assert main(["report", "--warehouse-dir", str(warehouse), "--out", str(out)]) == 0
    assert f"run report: {out / 'index.html'}" in capsys.readouterr().out
    page = (out / "index.html").read_text()
    # the run of the published version (its file name on disk) is the one described
    [version] = warehouse.glob("published-*.duckdb")
    assert version.stem.removeprefix("published-") in page
    assert main(["report", "--published", str(tmp_path / "none.duckdb")]) == 1


def test_demo_writes_what_the_generator_writes_for_that_size(tmp_path, capsys):
    from tools.demo.generator import DemoSpec, write_landing

    out = tmp_path / "cli"
    assert main(["demo", "--out", str(out), "--orders", "1_000", "--seed", "3"]) == 0
    assert f"demo data written into {out}" in capsys.readouterr().out
    write_landing(tmp_path / "direct", DemoSpec.for_orders(1000, 3))  # the generator itself
    written = {
        path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()
    }
    direct = tmp_path / "direct"
    expected = {
        path.relative_to(direct): path.read_bytes() for path in direct.rglob("*") if path.is_file()
    }
    assert written == expected and len(written) > 100
