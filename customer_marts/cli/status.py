"""The last runs from the run record (audit.pipeline_runs: run id, as-of date, status,
started and finished, published version), then what is published and as of when.

It only reads: build.duckdb's run record (or, while a running step holds that file,
the copy published with the last successful run) and published.duckdb.
"""

from __future__ import annotations

import argparse

from customer_marts.cli.options import add_warehouse_dir, apply_folders

COLUMNS = "run_id, logical_date, status, failed_step, started_at, finished_at, published_version"


def configure(parser: argparse.ArgumentParser) -> None:
    add_warehouse_dir(parser)
    parser.add_argument(
        "--runs", type=int, default=10, metavar="N", help="how many runs to list (default 10)"
    )


def last_runs(database, limit: int) -> list[dict]:
    """The newest `limit` run records of a warehouse database, newest first."""
    from customer_marts.warehouse import connect

    with connect(database, read_only=True) as con:
        cursor = con.execute(
            f"select {COLUMNS} from audit.pipeline_runs order by started_at desc limit ?",
            [limit],
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def run_lines(runs: list[dict]) -> list[str]:
    def moment(value) -> str:
        return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"

    lines = [
        f"  {'run id':<24} {'as-of date':<11} {'status':<8} {'started (UTC)':<19} "
        f"{'finished (UTC)':<19} published version"
    ]
    for run in runs:
        status = run["status"] + (f" in {run['failed_step']}" if run["failed_step"] else "")
        lines.append(
            f"  {run['run_id']:<24} {run['logical_date']!s:<11} {status:<8} "
            f"{moment(run['started_at']):<19} {moment(run['finished_at']):<19} "
            f"{run['published_version'] or '-'}"
        )
    return lines


def main(args: argparse.Namespace) -> int:
    import duckdb

    from customer_marts.config import Settings
    from customer_marts.runs.summary import published_lines

    apply_folders(args)
    settings = Settings.from_env()
    source = settings.build_db
    runs: list[dict] = []
    if not source.exists() and not settings.published_db.exists():
        print(f"no runs yet in {settings.warehouse_dir} (no build.duckdb): `make run` starts one")
        return 0
    try:
        runs = last_runs(source, args.runs) if source.exists() else []
    except duckdb.IOException:  # a running step holds build.duckdb
        source = settings.published_db
        print(f"{settings.build_db} is in use by a running step: the runs up to the last publish")
        runs = last_runs(source, args.runs) if source.exists() else []
    print(f"last {len(runs)} run(s) in {source} (audit.pipeline_runs), newest first:")
    print("\n".join(run_lines(runs)))
    print()
    print("\n".join(published_lines(settings)))
    return 0
