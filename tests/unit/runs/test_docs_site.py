"""The dbt docs site is generated only when what it shows changed: the dbt project,
the vars, the catalog (every column of every model and source). Otherwise a run keeps
the published site. Real pipeline runs (dbt build, GE gates, publish) on demo data."""

from __future__ import annotations

import os
from datetime import date

import pytest

from customer_marts.config import Settings
from customer_marts.publish.files import DOCS_DIR, staged_dir
from customer_marts.runs import pipeline
from customer_marts.transform.runner import DOCS_FINGERPRINT
from tools.demo.generator import DemoSpec, write_landing

pytestmark = [pytest.mark.slow, pytest.mark.dbt_build]
AS_OF = date(2025, 12, 31)


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("WAREHOUSE_DIR", str(tmp_path / "warehouse"))
    write_landing(tmp_path / "landing", DemoSpec(customers=400, seed=5))
    return Settings.from_env()


def published_docs(settings: Settings) -> tuple[str, str]:
    """The folder the published docs link points to, and its fingerprint."""
    link = settings.warehouse_dir / DOCS_DIR
    return os.readlink(link), (link / DOCS_FINGERPRINT).read_text()


def test_the_docs_site_is_regenerated_only_when_the_project_or_catalog_changed(settings):
    first = pipeline.run_all(settings, AS_OF)
    folder, fingerprint = published_docs(settings)
    assert folder == staged_dir(settings.warehouse_dir, DOCS_DIR, first.run_id).name
    # the next night: same project, same columns; the site stays as published
    second = pipeline.run_all(settings, date(2026, 1, 1))
    assert not staged_dir(settings.warehouse_dir, DOCS_DIR, second.run_id).exists()
    assert published_docs(settings) == (folder, fingerprint)
    assert (settings.warehouse_dir / DOCS_DIR / "index.html").exists()
    # another var: the manifest the site embeds changes, so the site is generated again
    third = pipeline.run_all(settings, date(2026, 1, 2), {"source_freshness_warn_hours": 40})
    regenerated, new_fingerprint = published_docs(settings)
    assert regenerated == staged_dir(settings.warehouse_dir, DOCS_DIR, third.run_id).name
    assert new_fingerprint != fingerprint
