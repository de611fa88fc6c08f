"""Render the run report of the published build: $WAREHOUSE_DIR/report/index.html.

Every successful run writes it after publish; run this to render it again (after a
rollback, say) or from another published file. It only reads the file (read-only),
so it is safe while the pipeline runs.

    customer-marts report                       # $WAREHOUSE_DIR/published.duckdb
    customer-marts report --published FILE --out DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from customer_marts.cli.options import add_warehouse_dir, apply_folders


def configure(parser: argparse.ArgumentParser) -> None:
    add_warehouse_dir(parser)
    parser.add_argument(
        "--published",
        type=Path,
        metavar="FILE",
        help="the published file to describe (default: $WAREHOUSE_DIR/published.duckdb)",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="where to write (default: $WAREHOUSE_DIR/report)"
    )


def main(args: argparse.Namespace) -> int:
    import logging

    from customer_marts.config import Settings
    from customer_marts.report.page import REPORT_DIR, write_report

    apply_folders(args)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    settings = Settings.from_env()
    published = args.published or settings.published_db
    out = args.out or settings.warehouse_dir / REPORT_DIR
    try:
        path = write_report(published, out, settings.freshness_days)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"run report: {path} (open it in a browser; it works offline)")
    return 0
