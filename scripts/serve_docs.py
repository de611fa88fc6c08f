"""`make docs`: serve the dbt docs site on http://127.0.0.1:8080 (Ctrl-C stops it).

Every successful run writes the site to $WAREHOUSE_DIR/docs/. If there is none
yet, it is generated first (`dbt docs generate --static` on build.duckdb, with
the latest run's as-of date) — this needs build.duckdb not to be in use by a
running pipeline. `docs/static_index.html` is the same site in one file that
opens from disk without a server.

    python scripts/serve_docs.py [--port 8080] [--regenerate]
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from datetime import date
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import duckdb

from customer_marts.config import Settings
from customer_marts.publish.files import DOCS_DIR, staged_dir, swap_directory
from customer_marts.transform.runner import generate_docs
from customer_marts.warehouse import connect
from tools.demo.marker import run_date as demo_aware_run_date

HOST = "127.0.0.1"


def latest_as_of(settings: Settings) -> date:
    """The latest run's as-of date, else the default run date."""
    if settings.build_db.exists():
        with connect(settings.build_db, read_only=True) as con:
            try:
                found = con.execute("select max(logical_date) from audit.pipeline_runs").fetchone()
            except duckdb.CatalogException:  # no run recorded yet
                found = None
        if found and found[0]:
            return found[0]
    return demo_aware_run_date(settings)


def ensure_docs(settings: Settings, regenerate: bool) -> None:
    docs = settings.warehouse_dir / DOCS_DIR
    if (docs / "index.html").exists() and not regenerate:
        return
    print(f"generating the dbt docs site in {docs} ...", flush=True)
    staged = staged_dir(settings.warehouse_dir, DOCS_DIR, "manual")
    generate_docs(settings, latest_as_of(settings), staged, compile_models=True)
    swap_directory(staged, docs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--regenerate", action="store_true", help="generate the site again")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    settings = Settings.from_env()
    ensure_docs(settings, args.regenerate)
    docs = settings.warehouse_dir / DOCS_DIR
    # The folder is given by path, not opened: a run that re-points `docs` while the
    # server runs is served from its next request on.
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(docs))
    with ThreadingHTTPServer((HOST, args.port), handler) as server:
        print(f"dbt docs: http://{HOST}:{args.port}/  (serving {docs}; Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
