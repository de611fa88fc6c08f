"""`customer-marts validate-config` on the project's configuration and on broken copies
of it: each problem names the file, the line and the key (line numbers counted by hand
in the texts below), and the exit code is 1."""

from __future__ import annotations

import shutil

import pytest

from customer_marts.cli import main
from customer_marts.config import PROJECT_ROOT

GOOD_SOURCES = (PROJECT_ROOT / "config" / "sources.yml").read_text()


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    """A copy of the project's config/ folder, and an environment whose folders exist."""
    folder = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", folder)
    (tmp_path / "landing").mkdir()
    monkeypatch.setenv("CUSTOMER_MARTS_CONFIG_DIR", str(folder))
    monkeypatch.setenv("LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("WAREHOUSE_DIR", str(tmp_path / "warehouse"))
    for name in ("RUN_DATE", "MAX_QUARANTINE_PCT", "EXPORT_PARQUET", "CUSTOMER_KEY_SALT"):
        monkeypatch.delenv(name, raising=False)
    return folder


def validate(capsys) -> tuple[int, str]:
    code = main(["validate-config"])
    return code, capsys.readouterr().out


def problems(output: str) -> list[str]:
    """The problem lines of the report (after "N problem(s):")."""
    _, _, listed = output.partition("problem(s):\n")
    return [line.strip() for line in listed.splitlines() if line.strip()]


def test_the_projects_configuration_is_valid(config_dir, capsys):
    code, output = validate(capsys)
    assert code == 0, output
    sources = "orders, surveys, survey_sends, order_lines, marketing_spend"
    assert f"{config_dir / 'sources.yml'}: ok ({sources})" in output
    assert "problem" not in output


def test_a_yaml_syntax_error_names_the_file_and_its_line(config_dir, capsys):
    sources = config_dir / "sources.yml"
    # line 1: reporting_currency, 2: sources:, 3: orders:, 4: the unclosed list
    sources.write_text("reporting_currency: USD\nsources:\n  orders:\n    glob: [a.csv, b.csv\n")
    code, output = validate(capsys)
    assert code == 1
    [problem] = problems(output)
    # the parser notices the missing "]" where the text ends: line 5 (after line 4's end)
    assert problem.startswith(f"{sources}:5: YAML syntax error")


def test_an_unknown_key_is_named_with_its_line(config_dir, capsys):
    sources = config_dir / "sources.yml"
    sources.write_text(
        "reporting_currency: USD\n"  # 1
        "sources:\n"  # 2
        "  orders:\n"  # 3
        "    folder: orders\n"  # 4
        "    delimter: ';'\n"  # 5: misspelt
        "  surveys: {folder: surveys}\n"  # 6
    )
    code, output = validate(capsys)
    assert code == 1
    [problem] = problems(output)
    assert problem.startswith(f"{sources}:5: sources.orders.delimter: unknown key")
    assert "delimiter" in problem  # the known keys are listed


def test_a_wrong_type_is_named_with_its_line_and_key(config_dir, capsys):
    sources = config_dir / "sources.yml"
    sources.write_text(
        "reporting_currency: USD\n"  # 1
        "sources:\n"  # 2
        "  orders:\n"  # 3
        "    collapse: 'yes'\n"  # 4: a string, not a boolean
        "    columns: [order_id, amount]\n"  # 5: a list, not a mapping
    )
    code, output = validate(capsys)
    assert code == 1
    assert problems(output) == [
        f"{sources}:4: sources.orders.collapse: must be true or false, not a string",
        f"{sources}:5: sources.orders.columns: must be a mapping or null, not a list",
    ]


def test_the_pipelines_own_checks_are_placed_at_their_line(config_dir, capsys):
    sources = config_dir / "sources.yml"
    sources.write_text(
        "reporting_currency: USD\n"  # 1
        "sources:\n"  # 2
        "  surveys:\n"  # 3
        "    folder: surveys\n"  # 4
        "    timezone: Mars/Olympus\n"  # 5: not an IANA zone (only the pipeline knows)
    )
    code, output = validate(capsys)
    assert code == 1
    [problem] = problems(output)
    assert problem.startswith(f"{sources}:5: sources.surveys.timezone: timezone ")
    assert "IANA" in problem


def test_a_key_given_twice_and_a_broken_preset(config_dir, capsys):
    sources, presets = config_dir / "sources.yml", config_dir / "presets.yml"
    sources.write_text(
        "reporting_currency: USD\n"  # 1
        "sources:\n"  # 2
        "  orders:\n"  # 3
        "    folder: a\n"  # 4
        "    folder: b\n"  # 5: YAML keeps only this one
    )
    presets.write_text(
        "my_preset:\n"  # 1
        "  contract: orders\n"  # 2
        "  required: 5\n"  # 3: a number, not a list
    )
    code, output = validate(capsys)
    assert code == 1
    assert problems(output) == [
        f"{sources}:5: sources.orders.folder: given twice (also on line 4); "
        "only the last one would count",
        f"{presets}:3: my_preset.required: must be a list or a string or null, not a number",
    ]


def test_a_missing_file_and_a_bad_environment(config_dir, capsys, monkeypatch, tmp_path):
    (config_dir / "presets.yml").unlink()
    monkeypatch.setenv("LANDING_DIR", str(tmp_path / "landng"))
    code, output = validate(capsys)
    assert code == 1
    assert problems(output) == [
        f"{config_dir / 'presets.yml'}: the file does not exist",
        f"environment: LANDING_DIR: {tmp_path / 'landng'} does not exist",
    ]
    monkeypatch.setenv("MAX_QUARANTINE_PCT", "one")
    (config_dir / "presets.yml").write_text("")
    code, output = validate(capsys)
    assert code == 1
    assert "environment: MAX_QUARANTINE_PCT: MAX_QUARANTINE_PCT='one' is not a number" in output


def test_a_source_keyed_by_email_needs_the_salt(config_dir, capsys):
    sources = config_dir / "sources.yml"
    sources.write_text(
        GOOD_SOURCES.replace(
            "    folder: orders\n", "    folder: orders\n    customer_key: email\n", 1
        )
    )
    code, output = validate(capsys)
    assert code == 1
    [problem] = problems(output)
    assert problem.startswith("environment: CUSTOMER_KEY_SALT: CUSTOMER_KEY_SALT is not set")
    assert "orders" in problem
