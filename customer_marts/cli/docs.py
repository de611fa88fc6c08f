"""Serve the dbt docs site on http://127.0.0.1:8000 and the run report on
http://127.0.0.1:8000/report/ (Ctrl-C stops it).

Every successful run writes the site to $WAREHOUSE_DIR/docs/. If there is none yet,
it is generated first (`dbt docs generate --static` on build.duckdb, with the latest
run's as-of date): this needs build.duckdb not to be in use by a running pipeline.
`docs/static_index.html` is the same site in one file that opens from disk without a
server.

    customer-marts docs [--port 8000] [--regenerate]
"""

from __future__ import annotations

import argparse

from customer_marts.cli.options import add_warehouse_dir, apply_folders

HOST = "127.0.0.1"
REPORT_ROUTE = "/report"  # the run report ($WAREHOUSE_DIR/report/) beside the docs site


def configure(parser: argparse.ArgumentParser) -> None:
    add_warehouse_dir(parser)
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (8000)")
    parser.add_argument("--regenerate", action="store_true", help="generate the site again")


def main(args: argparse.Namespace) -> int:
    import functools
    import logging
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from customer_marts.config import Settings
    from customer_marts.runs.record import latest_logical_date
    from customer_marts.transform.docs_site import ensure_docs_site
    from tools.demo.marker import run_date as demo_aware_run_date

    apply_folders(args)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    settings = Settings.from_env()
    as_of = latest_logical_date(settings.build_db) or demo_aware_run_date(settings)
    docs = ensure_docs_site(settings, as_of, args.regenerate)
    report = settings.warehouse_dir / "report"

    class Site(SimpleHTTPRequestHandler):
        """/report/... from the run report's folder, everything else from the docs site.
        The folders are given by path, not opened: a run that re-points them while the
        server runs is served from its next request on."""

        def translate_path(self, path: str) -> str:
            route = path.split("?", 1)[0].split("#", 1)[0]
            if route == REPORT_ROUTE or route.startswith(REPORT_ROUTE + "/"):
                self.directory = str(report)
                path = path[len(REPORT_ROUTE) :] or "/"
            else:
                self.directory = str(docs)
            return super().translate_path(path)

    handler = functools.partial(Site, directory=str(docs))
    with ThreadingHTTPServer((HOST, args.port), handler) as server:
        print(
            f"dbt docs: http://{HOST}:{args.port}/  run report: "
            f"http://{HOST}:{args.port}{REPORT_ROUTE}/  (serving {docs}; Ctrl-C stops)",
            flush=True,
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0
