"""The product does not depend on its tooling: nothing in customer_marts/ or dags/ (nor
the dbt project's Python models) imports tools/ or bench/, so the Docker image and a
production DAG run without them."""

from __future__ import annotations

import ast

import pytest

from customer_marts.config import PROJECT_ROOT

TOOLING = ("tools", "bench")
PRODUCT = ("customer_marts", "dags", "dbt_project/models")


def imported_modules(source: str) -> set[str]:
    """Every module an `import` or `from ... import` statement names (absolute imports)."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def tooling_imports(source: str) -> set[str]:
    return {module for module in imported_modules(source) if module.split(".")[0] in TOOLING}


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import tools.demo.generator", {"tools.demo.generator"}),
        ("from tools.local_airflow import local_airflow_env", {"tools.local_airflow"}),
        ("def f():\n    from bench import harness\n", {"bench"}),
        ("import bench as b, os", {"bench"}),
        ("from customer_marts import tools_of_trade\nimport benchmark", set()),
        ("from . import bench", set()),  # relative: a sibling module, not the package
    ],
)
def test_the_check_finds_tooling_imports_wherever_they_are(source, found):
    assert tooling_imports(source) == found


def test_nothing_in_the_product_imports_the_tooling():
    # The command line is the one exception, checked in tests/unit/cli/test_commands.py:
    # its demo and local-Airflow parts import tools/ inside the functions that use them.
    cli = PROJECT_ROOT / "customer_marts" / "cli"
    files = [
        path
        for folder in PRODUCT
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        if not path.is_relative_to(cli)
    ]
    assert len(files) > 20  # the package, the DAG and the dbt Python models
    offending = {
        str(path.relative_to(PROJECT_ROOT)): sorted(found)
        for path in files
        if (found := tooling_imports(path.read_text()))
    }
    assert offending == {}


def test_the_tooling_lives_outside_the_package():
    package = {path.stem for path in (PROJECT_ROOT / "customer_marts").rglob("*.py")}
    assert not package & {"demo", "bench", "gate_bench"}
    assert (PROJECT_ROOT / "tools" / "demo" / "generator.py").is_file()
    assert (PROJECT_ROOT / "bench" / "harness.py").is_file()
