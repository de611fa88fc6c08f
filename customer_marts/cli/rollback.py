"""Roll `published.duckdb` back (or forward) to a kept published version.

    customer-marts rollback                 # list the kept versions; * = published
    customer-marts rollback --previous      # the version before the published one
    customer-marts rollback RUN_ID          # a run id or a published-<run_id>.duckdb name

The switch is one atomic rename (customer_marts.publish.files.point_to), as at publish:
readers see the old file or the chosen one, never a mix; connected readers keep
their snapshot until they reconnect. With EXPORT_PARQUET on, $WAREHOUSE_DIR/parquet
is re-pointed to the chosen version's marts too, and the run report is rendered again
from it. The next successful run publishes a new version again: pause the DAG if the
rollback must stick.
"""

from __future__ import annotations

import argparse
import sys

from customer_marts.cli.options import add_warehouse_dir, apply_folders


def configure(parser: argparse.ArgumentParser) -> None:
    add_warehouse_dir(parser)
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("version", nargs="?", help="run id or published-<run_id>.duckdb")
    choice.add_argument("--previous", action="store_true", help="the version before the current")


def print_versions(settings) -> None:
    from customer_marts.publish.versions import describe_versions

    versions = describe_versions(settings)
    if not versions:
        print(f"no published versions in {settings.warehouse_dir}")
        return
    print(f"published versions in {settings.warehouse_dir} (* = published.duckdb):")
    print(f"    {'run id':<24} {'as-of date':<11} {'data as of':<11} {'size':>8}")
    for info in versions:
        print(
            f"  {'*' if info['is_published'] else ' '} {info['run_id']:<24} "
            f"{info['logical_date'] or '?':<11} {info['data_as_of'] or '?':<11} "
            f"{info['size_mb']:>6} MB"
        )


def main(args: argparse.Namespace) -> int:
    import logging

    from customer_marts.config import Settings
    from customer_marts.publish.rollback import rollback
    from customer_marts.publish.versions import previous_version, resolve_version
    from customer_marts.report.page import write_run_report

    apply_folders(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings.from_env()
    if not args.version and not args.previous:
        print_versions(settings)
        return 0
    try:
        version = (
            previous_version(settings.warehouse_dir, settings.published_db)
            if args.previous
            else resolve_version(settings.warehouse_dir, args.version)
        )
    except FileNotFoundError as exc:
        print(f"rollback: {exc}", file=sys.stderr)
        return 2
    rollback(settings, version)
    print(f"published.duckdb -> {version.name}")
    report = write_run_report(settings)  # the report describes what is published now
    if report:
        print(f"run report: {report}")
    print_versions(settings)
    return 0
