"""Ingestion on real DuckDB files: rows are conserved, bad rows quarantined with a
reason and line number, bad files fail by name, reruns and corrections are safe."""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from pathlib import Path

import duckdb
import pytest

from customer_marts.ingest.run import IngestError, ingest
from customer_marts.ingest.sources import load
from tests.conftest import write_csv

HEADER = ["order_id", "customer_id", "ordered_at", "amount", "status"]


def query(settings, sql, params=None):
    with duckdb.connect(str(settings.build_db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def manifest(settings, file_name):
    return query(
        settings,
        "select status, rows_read, rows_loaded, rows_quarantined, rows_duplicate "
        "from audit.ingested_files where file_name = ? order by loaded_at",
        [file_name],
    )


def test_clean_file_loads_every_row_as_utc(settings):
    write_csv(
        settings.landing_dir / "orders/a.csv",
        HEADER,
        [
            ["o1", "c1", "2025-01-01T10:00:00Z", "10.50", "completed"],
            ["o2", "c1", "2025-01-01T23:30:00-05:00", "5", ""],  # offset -> next day 04:30 UTC
            ["o3", "c2", "2025-01-02 08:00:00", "0", "CANCELLED"],  # naive -> UTC
        ],
    )
    ingest(settings.build_db, settings.landing_dir, "r1")
    rows = query(
        settings,
        "select order_id, ordered_at::varchar, amount::varchar, status "
        "from raw.orders order by order_id",
    )
    assert rows == [
        ("o1", "2025-01-01 10:00:00", "10.50", "completed"),
        ("o2", "2025-01-02 04:30:00", "5.00", "completed"),  # empty status -> completed
        ("o3", "2025-01-02 08:00:00", "0.00", "cancelled"),
    ]
    assert manifest(settings, "orders/a.csv") == [("loaded", 3, 3, 0, 0)]


def test_bad_rows_go_to_quarantine_with_line_and_reason(settings):
    write_csv(
        settings.landing_dir / "orders/bad.csv",
        HEADER,
        [
            ["o1", "c1", "2025-01-01T10:00:00Z", "10", "completed"],  # line 2: ok
            ["o2", "c1", "2025-01-01T10:00:00Z", "-3", "completed"],  # line 3: negative
            ["o3", "", "2025-01-01T10:00:00Z", "1", "completed"],  # line 4: no customer
            ["o4", "c2", "yesterday", "1", "completed"],  # line 5: bad timestamp
            ["o5", "c2", "2025-01-01T10:00:00Z", "ten", "completed"],  # line 6: bad number
            ["o6", "c2", "2025-01-01T10:00:00Z", "1", "shipped"],  # line 7: unknown status
        ],
    )
    ingest(settings.build_db, settings.landing_dir, "r1")
    assert query(
        settings, 'select line_number, "column", reason from audit.quarantine order by line_number'
    ) == [
        (3, "amount", "negative value"),
        (4, "customer_id", "missing required value"),
        (5, "ordered_at", "unparseable timestamp"),
        (6, "amount", "unparseable number"),
        (7, "status", "unknown value (accepted: completed, cancelled, refunded)"),
    ]
    assert manifest(settings, "orders/bad.csv") == [("loaded", 6, 1, 5, 0)]


def test_a_collapsed_row_without_key_is_quarantined_not_merged_into_an_order(settings):
    """Collapsing keeps a row without order_id a record of its own, also when an order
    is named like its line ('#2': Shopify's names are '#1001', ...)."""
    write_csv(
        settings.landing_dir / "orders/shop.csv",
        HEADER,
        [
            ["", "c1", "2025-01-01T10:00:00Z", "10", "completed"],  # line 2: no order_id
            ["#2", "c2", "2025-01-02T10:00:00Z", "20", "completed"],  # line 3: order #2
        ],
    )
    config = load(overrides={"sources": {"orders": {"collapse": True}}})
    ingest(settings.build_db, settings.landing_dir, "r1", config=config)
    assert query(settings, 'select line_number, "column", reason from audit.quarantine') == [
        (2, "order_id", "missing required value")
    ]
    # order #2 is its own line's: customer c2, 20.00 (not line 2's c1 and 10.00)
    assert query(
        settings, "select order_id, customer_id, amount::varchar, _line_number from raw.orders"
    ) == [("#2", "c2", "20.00", 3)]
    assert manifest(settings, "orders/shop.csv") == [("loaded", 2, 1, 1, 0)]


def test_line_numbers_count_embedded_newlines(settings):
    header = ["response_id", "responded_at", "nps_score", "comment"]
    write_csv(
        settings.landing_dir / "surveys/s.csv",
        header,
        [
            ["r1", "2025-01-01T10:00:00Z", "9", "two\nlines"],  # lines 2-3
            ["r2", "2025-01-01T10:00:00Z", "7.5", "x"],  # line 4: not an integer
            ["r3", "2025-01-01T10:00:00Z", "11", "y"],  # line 5: out of range
        ],
    )
    ingest(settings.build_db, settings.landing_dir, "r1")
    assert query(settings, "select line_number, reason from audit.quarantine order by 1") == [
        (4, "not an integer"),
        (5, "outside 0..10"),
    ]
    assert query(settings, "select comment from raw.surveys") == [("two\nlines",)]


def test_missing_required_column_fails_by_name_and_loads_nothing(settings):
    write_csv(
        settings.landing_dir / "orders/good.csv",
        HEADER,
        [["o1", "c1", "2025-01-01T10:00:00Z", "10", "completed"]],
    )
    write_csv(
        settings.landing_dir / "orders/no_amount.csv",
        ["order_id", "customer_id", "ordered_at"],
        [["o2", "c1", "2025-01-01T10:00:00Z"]],
    )
    with pytest.raises(IngestError) as error:
        ingest(settings.build_db, settings.landing_dir, "r1")
    message = str(error.value)
    assert "orders/no_amount.csv" in message and "amount" in message
    assert "columns found: order_id, customer_id, ordered_at" in message
    assert query(settings, "select count(*) from raw.orders") == [(0,)]
    assert manifest(settings, "orders/no_amount.csv")[0][0] == "failed"


def test_rerun_and_redelivery_under_another_name_are_skipped(settings):
    first = write_csv(
        settings.landing_dir / "orders/a.csv",
        HEADER,
        [["o1", "c1", "2025-01-01T10:00:00Z", "10", "completed"]],
    )
    ingest(settings.build_db, settings.landing_dir, "r1")
    ingest(settings.build_db, settings.landing_dir, "r2")  # nothing new
    shutil.copy(first, settings.landing_dir / "orders/a_copy.csv")
    summary = ingest(settings.build_db, settings.landing_dir, "r3")
    assert summary.files_skipped == 1 and summary.rows_read == 0
    assert manifest(settings, "orders/a_copy.csv") == [("skipped", 0, 0, 0, 0)]
    assert query(settings, "select count(*) from raw.orders") == [(1,)]


def test_correction_replaces_rows_and_latest_file_wins_duplicates(settings):
    write_csv(
        settings.landing_dir / "orders/a.csv",
        HEADER,
        [
            ["o1", "c1", "2025-01-01T10:00:00Z", "10", "completed"],
            ["o2", "c1", "2025-01-02T10:00:00Z", "20", "completed"],
        ],
    )
    ingest(settings.build_db, settings.landing_dir, "r1")
    # b.csv repeats o2 (refunded now) twice: the later line wins, the other is a duplicate
    write_csv(
        settings.landing_dir / "orders/b.csv",
        HEADER,
        [
            ["o2", "c1", "2025-01-02T10:00:00Z", "20", "cancelled"],
            ["o2", "c1", "2025-01-02T10:00:00Z", "20", "refunded"],
        ],
    )
    ingest(settings.build_db, settings.landing_dir, "r2")
    assert query(settings, "select order_id, status, _file_name from raw.orders order by 1") == [
        ("o1", "completed", "orders/a.csv"),
        ("o2", "refunded", "orders/b.csv"),
    ]
    # a.csv's o2 was superseded: it now counts as a duplicate of a.csv
    assert manifest(settings, "orders/a.csv") == [("loaded", 2, 1, 0, 1)]
    assert manifest(settings, "orders/b.csv") == [("loaded", 2, 1, 0, 1)]
    # a corrected a.csv (same name, new content) replaces a.csv's rows
    write_csv(
        settings.landing_dir / "orders/a.csv",
        HEADER,
        [["o1", "c1", "2025-01-01T10:00:00Z", "11", "completed"]],
    )
    ingest(settings.build_db, settings.landing_dir, "r3")
    assert query(settings, "select order_id, amount::varchar from raw.orders order by 1") == [
        ("o1", "11.00"),
        ("o2", "20.00"),
    ]
    assert [row[0] for row in manifest(settings, "orders/a.csv")] == ["replaced", "loaded"]


def test_rows_are_conserved_and_match_the_raw_table(settings):
    """rows_read = loaded + quarantined + duplicate per loaded file, and the raw table
    holds exactly the sum of rows_loaded, across formats and delimiters."""
    write_csv(
        settings.landing_dir / "orders/semicolon.csv",
        HEADER,
        [
            ["o1", "c1", "2025-01-01T10:00:00Z", "10", "completed"],
            ["o1", "c1", "2025-01-01T10:00:00Z", "12", "completed"],
            ["o2", "c1", "2025-01-01T10:00:00Z", "-1", "completed"],
        ],
        delimiter=";",
    )
    plain = write_csv(
        settings.landing_dir / "tmp.csv",
        HEADER,
        [["o3", "c2", "2025-01-03T10:00:00Z", "3", "completed"]],
    )
    with gzip.open(settings.landing_dir / "orders/zipped.csv.gz", "wb") as handle:
        handle.write(plain.read_bytes())
    with duckdb.connect() as con:
        con.execute(
            f"copy (select 'o4' as order_id, 'c3' as customer_id, "
            f"timestamp '2025-01-04 10:00' as ordered_at, 4.5 as amount) "
            f"to '{settings.landing_dir / 'orders/p.parquet'}' (format parquet)"
        )
    ingest(settings.build_db, settings.landing_dir, "r1")
    files = query(
        settings,
        "select file_name, rows_read, rows_loaded + rows_quarantined + "
        "rows_duplicate from audit.ingested_files where status = 'loaded'",
    )
    assert len(files) == 3 and all(read == accounted for _, read, accounted in files)
    assert query(settings, "select sum(rows_read) from audit.ingested_files") == [(5,)]
    assert query(settings, "select count(*) from raw.orders") == query(
        settings, "select sum(rows_loaded) from audit.ingested_files where status = 'loaded'"
    )
    assert query(settings, "select amount::varchar from raw.orders where order_id = 'o1'") == [
        ("12.00",)
    ]


def test_a_new_daily_file_is_the_only_file_read(settings):
    for day in ("01", "02", "03"):
        write_csv(
            settings.landing_dir / f"orders/orders_2025-01-{day}.csv",
            HEADER,
            [[f"o{day}", "c1", f"2025-01-{day}T10:00:00Z", "10", "completed"]],
        )
    ingest(settings.build_db, settings.landing_dir, "r1")
    write_csv(
        settings.landing_dir / "orders/orders_2025-01-04.csv",
        HEADER,
        [["o04", "c1", "2025-01-04T10:00:00Z", "10", "completed"]],
    )
    summary = ingest(settings.build_db, settings.landing_dir, "r2")
    assert (summary.files_loaded, summary.rows_read) == (1, 1)
    assert query(settings, "select file_name from audit.ingested_files where run_id = 'r2'") == [
        ("orders/orders_2025-01-04.csv",)
    ]


def test_files_with_different_line_endings_in_one_read_keep_every_row(settings):
    """Regression: DuckDB's sniffer, run on the first file of a multi-file read_csv,
    silently dropped the rows of a later file with other line endings."""
    lf = "order_id,customer_id,ordered_at,amount\no1,c1,2025-01-01T10:00:00Z,1\n"
    (settings.landing_dir / "orders").mkdir()
    (settings.landing_dir / "orders/a.csv").write_text(lf)
    (settings.landing_dir / "orders/b.csv").write_bytes(
        lf.replace("o1", "o2").replace("\n", "\r\n").encode()
    )
    ingest(settings.build_db, settings.landing_dir, "r1")
    assert query(settings, "select order_id, _line_number from raw.orders order by 1") == [
        ("o1", 2),
        ("o2", 2),
    ]


def test_one_unreadable_file_among_many_is_named_alone(settings):
    for name in ("a", "b", "c"):
        write_csv(
            settings.landing_dir / f"orders/{name}.csv",
            HEADER,
            [[f"o{name}", "c1", "2025-01-01T10:00:00Z", "1", "completed"]],
        )
    (settings.landing_dir / "orders/b.csv").write_bytes(
        "order_id,customer_id,ordered_at,amount\nob,Zoë,2025-01-01T10:00:00Z,1\n".encode("latin-1")
    )
    with pytest.raises(IngestError) as error:
        ingest(settings.build_db, settings.landing_dir, "r1")
    assert str(error.value).startswith("orders/b.csv: is not valid utf-8")
    assert "orders/a.csv" not in str(error.value) and "orders/c.csv" not in str(error.value)
    assert manifest(settings, "orders/b.csv") == [("failed", 0, 0, 0, 0)]
    assert query(settings, "select count(*) from raw.orders") == [(0,)]


def test_a_malformed_record_in_one_of_many_files_is_quarantined_and_the_rest_load(settings):
    """The group read fails on the malformed record; the files are read again keeping it
    (before the load transaction, which a failed read would abort)."""
    for name in ("a", "b", "c"):
        write_csv(
            settings.landing_dir / f"orders/{name}.csv",
            HEADER,
            [[f"o{name}", "c1", "2025-01-01T10:00:00Z", "1", "completed"]],
        )
    with (settings.landing_dir / "orders/b.csv").open("a") as handle:
        handle.write("ob2,c1,2025-01-01T10:00:00Z,1,completed,extra\r\n")  # as csv.writer
    ingest(settings.build_db, settings.landing_dir, "r1")
    assert query(settings, "select order_id from raw.orders order by 1") == [
        ("oa",),
        ("ob",),
        ("oc",),
    ]
    assert query(settings, 'select file_name, line_number, "column" from audit.quarantine') == [
        ("orders/b.csv", 3, None)
    ]
    assert manifest(settings, "orders/b.csv") == [("loaded", 2, 1, 1, 0)]


# ---------------------------------------------------------------- hostile input


def test_rows_read_are_checked_against_each_files_own_record_count(settings, monkeypatch):
    """The safety net under the literal paths: with paths handed to DuckDB unescaped
    again (its glob reads orders_1.csv for orders_[1].csv), the independent record
    count catches both files by name and nothing is loaded."""
    monkeypatch.setattr("customer_marts.ingest.csv_files.path_literal", lambda path: f"'{path}'")
    write_csv(
        settings.landing_dir / "orders/orders_[1].csv",
        HEADER,
        [["a1", "c1", "2025-01-01", "1", ""]],
    )
    write_csv(
        settings.landing_dir / "orders/orders_1.csv",
        HEADER,
        [["b1", "c1", "2025-01-01", "1", ""], ["b2", "c1", "2025-01-01", "1", ""]],
    )
    with pytest.raises(IngestError) as error:
        ingest(settings.build_db, settings.landing_dir, "r1")
    message = str(error.value)
    # orders_[1].csv: 0 of its 1 record read; orders_1.csv: its 2 records read twice
    assert "orders/orders_[1].csv: 0 record(s) were read but the file has 1" in message
    assert "orders/orders_1.csv: 4 record(s) were read but the file has 2" in message
    assert query(settings, "select count(*) from raw.orders") == [(0,)]
    assert query(settings, "select status from audit.ingested_files") == [("failed",), ("failed",)]


def test_a_header_bomb_is_read_in_bounded_memory(settings):
    """A gzip whose first line is 200 MiB: Python never holds more than a few MiB of it
    (tracemalloc counts every Python allocation, gzip's buffers included)."""
    import tracemalloc

    block = b"a" * (1 << 20)
    (settings.landing_dir / "orders").mkdir()
    with gzip.open(settings.landing_dir / "orders/bomb.csv.gz", "wb", compresslevel=1) as out:
        for _ in range(200):
            out.write(block)
    tracemalloc.start()
    try:
        with pytest.raises(IngestError, match="orders/bomb.csv.gz: line 1 .* is longer than"):
            ingest(settings.build_db, settings.landing_dir, "r1")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"peak {peak / 2**20:.0f} MiB"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("orders/corrupt.csv.gz", b"\x1f\x8b\x08\x00" + b"not a gzip stream" * 10),
        ("orders/binary.csv", bytes(range(256)) * 4),
        ("orders/garbage.parquet", b"PAR1 this is not parquet PAR1"),
        (
            "orders/blank_first_line.csv",
            b"\n" + b"order_id,customer_id,ordered_at,amount\no1,c1,x,1\n",
        ),
        ("orders/header.csv", b'order_id,"customer_id\nordered_at,amount\n'),
        ("orders/passwd.csv", b"root:x:0:0:root:/root:/bin/bash\nbin:x:2:2::/bin:/bin/sh\n"),
    ],
)
def test_every_bad_file_is_a_data_error_that_names_it(settings, name, content):
    """Bad input never costs a retry: the error is one of pipeline.DATA_ERRORS (failed at
    once), names the file, keeps a `failed` manifest row, and quotes none of its bytes."""
    from customer_marts.runs.pipeline import DATA_ERRORS

    path = settings.landing_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    with pytest.raises(Exception) as error:
        ingest(settings.build_db, settings.landing_dir, "r1")
    assert isinstance(error.value, DATA_ERRORS), repr(error.value)
    assert str(error.value).startswith(f"{name}: ")
    assert error.value.failures[0][1] == name
    for fragment in ("not a gzip stream", "this is not parquet", "o1,c1", "root:x", "bin/sh"):
        assert fragment not in str(error.value)
    assert manifest(settings, name) == [("failed", 0, 0, 0, 0)]


def test_a_deleted_file_is_named_once_and_its_rows_kept_and_the_note_goes_when_it_is_back(
    settings, caplog
):
    path = write_csv(
        settings.landing_dir / "orders/a.csv", HEADER, [["o1", "c1", "2025-01-01", "1", ""]]
    )
    content = path.read_bytes()
    ingest(settings.build_db, settings.landing_dir, "r1")
    path.unlink()
    summary = ingest(settings.build_db, settings.landing_dir, "r2")
    assert summary.files_gone == 1
    assert "no longer in LANDING_DIR" in caplog.text and "orders/a.csv" in caplog.text
    note = "no longer in LANDING_DIR (its rows are kept); noticed by run r2"
    assert query(settings, "select message from audit.ingested_files") == [(note,)]
    ingest(settings.build_db, settings.landing_dir, "r3")  # still gone: noted once
    assert query(settings, "select message from audit.ingested_files") == [(note,)]
    assert query(settings, "select order_id from raw.orders") == [("o1",)]
    path.write_bytes(content)  # back again: the note goes, nothing is read again
    summary = ingest(settings.build_db, settings.landing_dir, "r4")
    assert (summary.files_gone, summary.rows_read) == (0, 0)
    assert query(settings, "select message from audit.ingested_files") == [(None,)]


@pytest.mark.parametrize("chunk", [1, 3, 8, 1 << 20])
def test_the_record_count_agrees_with_duckdbs_reader_on_random_files(chunk, monkeypatch):
    """The independent count (records.py) must see records as DuckDB's reader does.
    The second method here is DuckDB itself (rows read plus rejected records) on 300
    small random files built from the fields exports hold (plain, quoted with
    delimiters, doubled quotes and line breaks, one space before a quote, a stray
    quote mid-field, an unterminated quote last),
    CRLF and blank lines, with 1 to 4 fields per record (malformed records too), read
    in chunks of `chunk` characters (so that every case also falls across a chunk
    boundary), as bytes and as text, by quote parity where it holds and quote by
    quote everywhere."""
    import io
    import random

    from customer_marts.ingest import records

    monkeypatch.setattr(records, "RECORD_LIMIT", chunk)
    parity = records._QuoteState.fast
    fields = ["a", "", "xy", '"q,1"', '"q""2"', '"multi\nline"', ' "sp"', '"t" ', 'x"y']
    rng = random.Random(chunk)  # the same files every run
    con = duckdb.connect()
    compared = located = 0
    for _ in range(300):
        lines = []
        items = []  # "record" or "blank", in file order, as written
        for _ in range(rng.randint(0, 6)):
            record = ",".join(rng.choice(fields) for _ in range(rng.randint(1, 4)))
            ending = rng.choice(["\n", "\r\n", "\n\n"])
            lines.append(record + ending)
            items.append("record" if record else "blank")
            items += ["blank"] if ending == "\n\n" else []
        if rng.random() < 0.2:
            lines.append('x,"open\nend')
        text = "h1,h2,h3\n" + "".join(lines)
        con.execute("drop table if exists rj; drop table if exists rs")
        try:
            rows = con.execute(
                f"select a, b, c from read_csv('{write_text(text)}', columns = {{'a': "
                "'VARCHAR', 'b': 'VARCHAR', 'c': 'VARCHAR'}, header = true, "
                "auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
                "store_rejects = true, rejects_table = 'rj', rejects_scan = 'rs')"
            ).fetchall()  # the rows themselves: count(*) would skip parsing them
        except duckdb.Error:
            continue  # a file DuckDB cannot read at all fails by name anyway
        exists = con.execute("select count(*) from duckdb_tables() where table_name = 'rj'")
        rejected = 0
        if exists.fetchone()[0]:  # DuckDB creates it only when the scan ran
            (rejected,) = con.execute("select count(distinct line) from rj").fetchone()
        counts = [records.count_records(io.BytesIO(text.encode()), "\n", ",").records]
        counts.append(records.count_records(io.StringIO(text), "\n", ",").records)
        monkeypatch.setattr(records._QuoteState, "fast", lambda *_: None)
        counts.append(records.count_records(io.StringIO(text), "\n", ",").records)
        monkeypatch.setattr(records._QuoteState, "fast", parity)
        assert counts == [len(rows) + rejected] * 3, repr(text)
        compared += 1
        if counts[0] == items.count("record"):  # no quote spans records: blanks as written
            runs = [records.count_records(io.BytesIO(text.encode())).blank_runs]
            runs.append(records.count_records(io.StringIO(text)).blank_runs)
            assert runs == [blank_runs_of(items)] * 2, repr(text)
            located += 1
    assert compared > 200
    assert located > 150


def blank_runs_of(items: list[str]) -> list[tuple[int, int]]:
    """(records before, header included; lines) for each run of blank lines."""
    runs, records_before = [], 1
    for item in items:
        if item == "record":
            records_before += 1
        elif runs and runs[-1][0] == records_before:
            runs[-1] = (records_before, runs[-1][1] + 1)
        else:
            runs.append((records_before, 1))
    return runs


def write_text(text: str) -> Path:
    """A scratch file with `text` (one per test process, rewritten each time)."""
    target = Path(tempfile.gettempdir()) / f"record_count_{os.getpid()}.csv"
    target.write_text(text, newline="")
    return target
