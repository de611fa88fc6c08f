"""Rebuild a damaged `build.duckdb` from the archive of every ingested file.

    customer-marts recover            # only if build.duckdb is damaged (or missing)
    customer-marts recover --force    # rebuild a healthy one too

The damaged file is kept as `build.duckdb.damaged-<time>`; the run history comes
from `published.duckdb`; every archived file is ingested again in its original
order (customer_marts/ingest/archive.py). Then `make run` (same RUN_DATE) builds and
publishes the same marts as before. Use the same CUSTOMER_KEY_SALT as the runs did.
"""

from __future__ import annotations

import argparse
import sys

from customer_marts.cli.options import add_warehouse_dir, apply_folders


def configure(parser: argparse.ArgumentParser) -> None:
    add_warehouse_dir(parser)
    parser.add_argument("--force", action="store_true", help="rebuild even a healthy database")


def main(args: argparse.Namespace) -> int:
    import logging

    from customer_marts.config import Settings
    from customer_marts.ingest import archive
    from customer_marts.logs import quiet_noisy_loggers

    apply_folders(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_noisy_loggers()
    settings = Settings.from_env()
    try:
        outcome = archive.recover(settings, force=args.force)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"recover: {exc}", file=sys.stderr)
        return 2
    if outcome.damaged:
        print(f"the damaged database was kept as {outcome.damaged}")
    print(
        f"rebuilt {settings.build_db} from {archive.archive_dir(settings)}: "
        f"{outcome.files} file(s) of {outcome.runs} run(s) ingested again"
    )
    for table, rows in outcome.rows.items():
        print(f"  raw.{table:<28} {rows:>10,} rows")
    if outcome.left_out:
        print(f"left out, as when first ingested (refused): {', '.join(outcome.left_out)}")
    if outcome.history_from:
        print(f"run history taken from {outcome.history_from}")
    print("next: make run (same RUN_DATE) builds and publishes the marts again")
    return 0
