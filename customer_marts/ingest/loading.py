"""The load, inside the run's one transaction: raw rows, quarantine and manifest together.

For one source's plan, whose rows were checked before the transaction (`checking`):
earlier rows of corrected files go, failed rows (and malformed CSV records) go to
audit.quarantine with their line number, column and reason, one row per key is kept
(the latest file, then the latest line wins; the others count as duplicates, here and
in raw), and one audit.ingested_files row per file says
rows_read = rows_loaded + rows_quarantined + rows_duplicate. Every raw row removed or
written is noted with its customer (customer_marts/runs/changes.py).
"""

from __future__ import annotations

import duckdb

from customer_marts.ingest.plan import GONE, Plan
from customer_marts.ingest.sql import key_in, literal, names_list, quote
from customer_marts.runs import changes, manifest


def load_source(con: duckdb.DuckDBPyConnection, plan: Plan, run_id: str) -> dict[str, int]:
    """Write the checked rows to raw, quarantine and manifest (in the transaction)."""
    config, checked, counts = plan.config, plan.checked, plan.counts
    source = config.name
    manifest.note_gone(con, source, GONE, plan.gone, plan.back, run_id)
    if checked is None:
        manifest.write_manifest(con, plan.manifest_rows)
        return counts
    contract = config.contract
    if plan.replaced:
        names = ", ".join(literal(name) for name in plan.replaced)
        replaced = f"raw.{source} where _file_name in ({names})"
        changes.note(con, contract, f"select * from {replaced}")
        con.execute(f"delete from {replaced}")
        manifest.mark_replaced(con, source, plan.replaced)
    if checked.failures:
        manifest.write_quarantine(con, source, f"select * from {checked.failed}", run_id)
    unit = contract.unit
    # The latest file wins: rows of earlier files with the same key (or, for order lines,
    # of the same order: a later delivery replaces all its lines) become duplicates.
    new_rows = f"select * from {checked.checked} where failed_reason is null and not is_duplicate"
    kept = f"select {names_list(unit)} from ({new_rows})"
    earlier = f"raw.{source} as earlier where {key_in(unit, 'earlier', kept)}"
    changes.note(con, contract, f"select * from {earlier}")
    changes.note(con, contract, new_rows)
    superseded = con.execute(f"delete from {earlier} returning _file_name").fetchall()
    superseded_by_file: dict[str, int] = {}
    for (name,) in superseded:
        superseded_by_file[name] = superseded_by_file.get(name, 0) + 1
    manifest.move_to_duplicates(con, source, superseded_by_file)
    columns = ", ".join(quote(column) for column in contract.column_names)
    con.execute(
        f"""
        insert into raw.{source} ({columns}, _file_name, _line_number, _run_id)
        select {columns}, file_name, _line_number, ?
        from ({new_rows})
        """,
        [run_id],
    )
    for file in plan.files:
        read, loaded, quarantined, duplicate = checked.stats.get(file.name, (0, 0, 0, 0))
        message = "; ".join(
            part
            for part in (
                checked.notes.get(file.name),
                "replaces an earlier delivery" if file.name in plan.replaced else None,
                plan.notes.get(file.name),
            )
            if part
        )
        plan.manifest_rows.append(
            manifest.manifest_row(
                source,
                file.name,
                plan.shas[file.name],
                run_id,
                status="loaded",
                rows=(read, loaded, quarantined, duplicate),
                extra=checked.extras.get(file.name),
                message=message or None,
            )
        )
        counts["files_loaded"] += 1
        for name, value in zip(
            ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate"),
            (read, loaded, quarantined, duplicate),
            strict=True,
        ):
            counts[name] = counts.get(name, 0) + value
    manifest.write_manifest(con, plan.manifest_rows)
    return counts
