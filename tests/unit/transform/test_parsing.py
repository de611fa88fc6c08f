"""dbt keeps its saved parse (partial_parse.msgpack) from one night to the next: the
as-of date changes every night, and it must not make dbt parse the whole project
again. Real `dbt parse` runs of the project, read from dbt's own log."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from customer_marts.config import Settings
from customer_marts.transform.docs_site import generate_docs
from customer_marts.transform.runner import run_dbt

FULL_REPARSE = "Unable to do partial parsing"
REUSED = "Nothing changed, skipping partial parsing"


def dbt_log(settings: Settings, invoke) -> str:
    """What dbt logged while `invoke()` ran."""
    log = settings.warehouse_dir / "dbt" / "logs" / "dbt.log"
    before = log.stat().st_size if log.exists() else 0
    invoke()
    with log.open() as lines:
        lines.seek(before)
        return lines.read()


def parse(settings: Settings, as_of: date, **extra_vars) -> str:
    """`dbt parse` as the pipeline runs it; what dbt logged of this invocation."""

    def invoke():
        code, _ = run_dbt(settings, "parse", as_of, extra_vars=extra_vars or None)
        assert code == 0

    return dbt_log(settings, invoke)


@pytest.fixture(scope="module")
def first_parse(tmp_path_factory) -> tuple[Settings, Path, str]:
    """A new warehouse's first `dbt parse` (a full parse), made once for the module: its
    settings, a copy of the warehouse folder it left, and what dbt logged."""
    root = tmp_path_factory.mktemp("parsing")
    settings = replace(Settings.from_env(), warehouse_dir=root / "warehouse")
    settings.warehouse_dir.mkdir()
    first = parse(settings, date(2025, 12, 30))
    shutil.copytree(settings.warehouse_dir, root / "parsed")
    return settings, root / "parsed", first


@pytest.fixture
def settings(first_parse, monkeypatch) -> Settings:
    """The warehouse as the first parse left it, in the same folder: each test starts
    from that one full parse."""
    settings, parsed, _ = first_parse
    shutil.rmtree(settings.warehouse_dir)
    shutil.copytree(parsed, settings.warehouse_dir)
    monkeypatch.setenv("WAREHOUSE_DIR", str(settings.warehouse_dir))
    return settings


def test_the_next_nights_as_of_date_reuses_the_saved_parse(first_parse, settings):
    first = first_parse[2]
    assert "saved manifest not found" in first  # a new warehouse: one full parse
    # The next night, and a rerun of an earlier date: nothing to parse again.
    for as_of in (date(2025, 12, 31), date(2025, 6, 30)):
        night = parse(settings, as_of)
        assert FULL_REPARSE not in night and REUSED in night, as_of


def test_a_changed_var_parses_again_and_the_docs_after_it_reuse_that_parse(settings, tmp_path):
    # the warehouse has the first night's saved parse (first_parse)
    changed = parse(settings, date(2025, 12, 31), churn_window_days=30)
    assert f"{FULL_REPARSE} because config vars" in changed
    # the docs of that build parse with its vars: without them dbt would parse the whole
    # project again, and the next build (with them) once more
    docs = dbt_log(
        settings,
        lambda: generate_docs(
            settings, date(2025, 12, 31), tmp_path / "site", extra_vars={"churn_window_days": 30}
        ),
    )
    assert FULL_REPARSE not in docs and REUSED in docs


def test_a_moved_or_copied_warehouse_keeps_its_saved_parse(first_parse, tmp_path):
    # dbt runs in the warehouse folder and the profile names the build database
    # relatively, so the profile, which the saved parse depends on, does not change
    _, parsed, _ = first_parse
    moved = tmp_path / "restored" / "warehouse"
    shutil.copytree(parsed, moved)
    night = parse(replace(first_parse[0], warehouse_dir=moved), date(2025, 12, 31))
    assert FULL_REPARSE not in night and REUSED in night
    assert "profile has changed" not in night
