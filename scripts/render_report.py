"""Render the run report of the published build: $WAREHOUSE_DIR/report/index.html.

Every successful run writes it after publish; run this to render it again (after a
rollback, say) or from another published file. It only reads the file (read-only),
so it is safe while the pipeline runs.

    python scripts/render_report.py                       # $WAREHOUSE_DIR/published.duckdb
    python scripts/render_report.py --published FILE --out DIR
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from customer_marts.config import Settings
from customer_marts.report.page import REPORT_DIR, write_report


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--published", type=Path, default=settings.published_db)
    parser.add_argument("--out", type=Path, default=settings.warehouse_dir / REPORT_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        path = write_report(args.published, args.out, settings.freshness_days)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"run report: {path} (open it in a browser; it works offline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
