"""The dbt docs site: `dbt docs generate` after the build, only when what the site shows
(the dbt project, the vars, the catalog) differs from the published site's."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from datetime import date
from pathlib import Path

from customer_marts.config import Settings
from customer_marts.publish.files import DOCS_DIR, staged_dir, swap_directory
from customer_marts.transform.fingerprint import hash_files, project_files
from customer_marts.transform.runner import DbtFailure, run_dbt
from customer_marts.warehouse import connect

log = logging.getLogger(__name__)

DOCS_FILES = ("index.html", "manifest.json", "catalog.json", "static_index.html")
GENERATED_DOCS_FILES = ("index.html", "catalog.json", "static_index.html")


# In the docs folder: the fingerprint (docs_fingerprint) of the site's project and catalog.
DOCS_FINGERPRINT = ".fingerprint"


def docs_fingerprint(settings: Settings, extra_vars: dict | None = None) -> str:
    """What the dbt docs site shows, as a hash: every file of the dbt project (models,
    macros, .yml, .md, dbt_project.yml with its vars), the vars given on top, the dbt
    and adapter versions, and the catalog, i.e. every column (name, type, position,
    comment) of every model and source relation of the manifest `dbt build` just wrote.
    The DuckDB catalog has no statistics (no row counts), so equal fingerprints mean an
    equal site; only the compiled SQL differs, which shows the as-of date of the run
    that generated the site."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    hash_files(digest, project_files(settings.dbt_project_dir))
    versions = [version(name) for name in ("dbt-core", "dbt-duckdb")]
    digest.update(json.dumps([extra_vars or {}, versions], sort_keys=True).encode())
    manifest = json.loads((settings.warehouse_dir / "dbt" / "target" / "manifest.json").read_text())
    relations = sorted(
        {
            (node["schema"], node.get("alias") or node.get("identifier") or node["name"])
            for node in [*manifest["nodes"].values(), *manifest["sources"].values()]
            if node["resource_type"] in ("model", "seed", "snapshot", "source")
        }
    )
    with connect(settings.build_db, read_only=True) as con:
        con.execute("create temp table relations (schema_name varchar, table_name varchar)")
        con.executemany("insert into relations values (?, ?)", relations)
        columns = con.execute(
            """
            select c.schema_name, c.table_name, c.column_name, c.data_type,
                c.column_index, c.comment
            from duckdb_columns() as c
            inner join relations using (schema_name, table_name)
            where c.database_name = current_database()
            order by all
            """
        ).fetchall()
    digest.update(json.dumps([relations, columns], default=str).encode())
    return digest.hexdigest()


def published_docs_fingerprint(settings: Settings) -> str | None:
    """The fingerprint of the published dbt docs site; None without one."""
    path = settings.warehouse_dir / DOCS_DIR / DOCS_FINGERPRINT
    return path.read_text().strip() if path.exists() else None


def generate_docs(
    settings: Settings,
    as_of: date,
    destination: Path,
    compile_models: bool = False,
    fingerprint: str | None = None,
    extra_vars: dict | None = None,
) -> Path:
    """`dbt docs generate --static` on the build database; the site's files go to `destination`.

    After `dbt build` the docs reuse its manifest (`--no-compile`: everything was
    just compiled, and compiling again would double the time this takes): dbt
    adds the catalog, `index.html` and `static_index.html` (the site in one file,
    manifest and catalog embedded, that opens from disk without a server) to the
    build's target folder, leaving its manifest.json and run_results.json as they
    are. `compile_models=True` (or no manifest yet) compiles and writes a new manifest.
    `extra_vars` are the build's: dbt parses with them again, so its saved parse stays valid.
    The four files and the fingerprint of what they show (`fingerprint`, if the caller
    has it already) are copied to `<destination>.partial`, renamed to `destination` once
    complete: `destination` is either complete or absent.
    """
    target = settings.warehouse_dir / "dbt" / "target"
    compile_models = compile_models or not (target / "manifest.json").exists()
    for name in GENERATED_DOCS_FILES:
        (target / name).unlink(missing_ok=True)
    flags = ["--static"] if compile_models else ["--static", "--no-compile"]
    returncode, _ = run_dbt(
        settings, "docs generate", as_of, *flags, extra_vars=extra_vars, target_path=target
    )
    missing = [name for name in DOCS_FILES if not (target / name).exists()]
    if returncode != 0 or missing:
        raise DbtFailure(
            f"dbt docs generate failed (exit code {returncode}; missing: "
            f"{', '.join(missing) or 'none'}); see the dbt log above"
        )
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(destination, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in DOCS_FILES:
        shutil.copy2(target / name, partial / name)
    fingerprint = fingerprint or docs_fingerprint(settings, extra_vars)
    (partial / DOCS_FINGERPRINT).write_text(fingerprint + "\n")
    partial.rename(destination)
    log.info("dbt docs site generated in %s", destination)
    return destination


def stage_docs_site(
    settings: Settings, as_of: date, destination: Path, extra_vars: dict | None = None
) -> Path | None:
    """After `dbt build` (with `extra_vars`): the dbt docs site generated in `destination`
    for publish, or None when the published site shows this very project and catalog
    (equal fingerprints: it is kept as it is)."""
    fingerprint = docs_fingerprint(settings, extra_vars)
    if fingerprint == published_docs_fingerprint(settings):
        log.info("dbt docs site unchanged (same project and catalog): kept as published")
        return None
    return generate_docs(
        settings, as_of, destination, fingerprint=fingerprint, extra_vars=extra_vars
    )


def ensure_docs_site(settings: Settings, as_of: date, regenerate: bool = False) -> Path:
    """The published dbt docs site ($WAREHOUSE_DIR/docs), generated for `as_of` (models
    compiled) and swapped in atomically if there is none yet or `regenerate` is set."""
    docs = settings.warehouse_dir / DOCS_DIR
    if (docs / "index.html").exists() and not regenerate:
        return docs
    log.warning("generating the dbt docs site in %s ...", docs)
    staged = staged_dir(settings.warehouse_dir, DOCS_DIR, "manual")
    generate_docs(settings, as_of, staged, compile_models=True)
    swap_directory(staged, docs)
    return docs
