"""The dbt tests' warehouse: landing files written, ingested and built by dbt, then read."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb

from customer_marts.ingest.run import ingest
from customer_marts.transform.runner import build, run_dbt
from tests.conftest import make_settings, write_csv


@contextmanager
def built_marts(
    root: Path,
    as_of: date,
    files: dict[str, tuple[list[str], list[list]]] | None = None,
    *,
    landing: Path | None = None,
    select: str | None = None,
    extra_vars: dict | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to a build database under `root`.

    Its landing folder holds `files` (path under the landing folder -> header, rows) or a
    copy of `landing`; after the ingest, `dbt build` of every model (as the pipeline
    builds) or of `select` and what it is built from (dbt's cautious indirect selection:
    only the tests of the selected models)."""
    settings = make_settings(root)
    if landing is not None:
        shutil.rmtree(settings.landing_dir)
        shutil.copytree(landing, settings.landing_dir)
    for relative, (header, rows) in (files or {}).items():
        write_csv(settings.landing_dir / relative, header, rows)
    ingest(settings.build_db, settings.landing_dir, "test")
    if select is None:
        build(settings, as_of, extra_vars)
    else:
        arguments = ("--select", select, "--indirect-selection", "cautious")
        code, _ = run_dbt(settings, "build", as_of, *arguments, extra_vars=extra_vars)
        assert code == 0, "dbt build failed: see the dbt log above"
    con = duckdb.connect(str(settings.build_db), read_only=True)
    try:
        yield con
    finally:
        con.close()
