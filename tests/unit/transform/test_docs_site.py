"""The dbt docs site is generated only when what it shows changed: the dbt project,
the vars, the catalog (every column of every model and source). Otherwise a run keeps
the published site. Real pipeline runs (dbt build, GE gates, publish) on the small
demo, after the shared first run's (published_demo)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import pytest

from customer_marts.config import Settings
from customer_marts.publish.files import DOCS_DIR, staged_dir
from customer_marts.runs.pipeline import run_all
from customer_marts.transform.docs_site import DOCS_FINGERPRINT, docs_fingerprint, ensure_docs_site
from customer_marts.warehouse import connect
from tests.conftest import DEMO_AS_OF, copy_warehouse, dbt_tests_left_out, make_settings

pytestmark = [pytest.mark.slow, pytest.mark.dbt_build]


@pytest.fixture
def settings(published_demo, small_demo, tmp_path) -> Iterator[Settings]:
    settings = replace(make_settings(tmp_path), landing_dir=small_demo)
    copy_warehouse(published_demo, settings.warehouse_dir)
    # the runs leave dbt's data and unit tests out: the site shows the project, not results
    with dbt_tests_left_out():
        yield settings


def published_docs(settings: Settings) -> tuple[str, str]:
    """The folder the published docs link points to, and its fingerprint."""
    link = settings.warehouse_dir / DOCS_DIR
    return os.readlink(link), (link / DOCS_FINGERPRINT).read_text().strip()


def test_the_docs_site_is_regenerated_only_when_the_project_or_catalog_changed(settings):
    folder, fingerprint = published_docs(settings)
    assert fingerprint == docs_fingerprint(settings)  # the first run's build, as it is
    # the catalog: a column's comment shows on the site, a table outside the project not
    with connect(settings.build_db) as con:
        con.execute("comment on column marts.dim_customers.customer_id is 'the key'")
    assert docs_fingerprint(settings) != fingerprint
    with connect(settings.build_db) as con:
        con.execute("comment on column marts.dim_customers.customer_id is null")
        con.execute("create schema scratch")
        con.execute("create table scratch.notes (note varchar)")
    assert docs_fingerprint(settings) == fingerprint
    with connect(settings.build_db) as con:
        con.execute("drop schema scratch cascade")
    # the next night: same project, same columns; the site stays as published
    second = run_all(settings, date(2026, 1, 1))
    assert not staged_dir(settings.warehouse_dir, DOCS_DIR, second.run_id).exists()
    assert published_docs(settings) == (folder, fingerprint)
    assert (settings.warehouse_dir / DOCS_DIR / "index.html").exists()
    # another var: the manifest the site embeds changes, so the site is generated again
    third = run_all(settings, date(2026, 1, 2), {"source_freshness_warn_hours": 40})
    regenerated, new_fingerprint = published_docs(settings)
    assert regenerated == staged_dir(settings.warehouse_dir, DOCS_DIR, third.run_id).name
    assert new_fingerprint != fingerprint


def test_a_site_generated_by_hand_has_the_fingerprint_the_next_run_compares(settings):
    # `customer-marts docs --regenerate`: without its fingerprint the next night, the
    # same project and catalog, would generate the site once more
    ensure_docs_site(settings, DEMO_AS_OF, regenerate=True)
    folder, fingerprint = published_docs(settings)
    assert folder == staged_dir(settings.warehouse_dir, DOCS_DIR, "manual").name
    assert fingerprint == docs_fingerprint(settings)
