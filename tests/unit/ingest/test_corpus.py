"""The ingestion corpus: every malformed or unusual export in tests/unit/ingest/corpus/
has its expected outcome asserted (cases.yml: loaded, quarantined with a reason, or the
run fails with a named message), and for every case rows are conserved file by file
and no clear-text e-mail address reaches the database."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

from customer_marts.ingest.contract import SOURCES
from customer_marts.ingest.run import IngestError, ingest
from customer_marts.ingest.sources import load

CORPUS = Path(__file__).with_name("corpus")
CASES = yaml.safe_load((CORPUS / "cases.yml").read_text(encoding="utf-8"))
SALT = "corpus-salt-for-tests-only"
# Anything shaped like an address, broader than the pipeline's own pattern (any
# non-space on both sides of an "@"); raw tables and audit must hold none.
EMAIL_LIKE = r"[^\s@]@[^\s@]"
HEADER = b"order_id,customer_id,ordered_at,amount\n"
FIFTY_MIB = 50 << 20


def long_unquoted(path: Path) -> None:
    """o1 (line 2); o2 (line 3) with an amount of 50 MiB of digits; o3 (line 4)."""
    with path.open("wb") as handle:
        handle.write(HEADER + b"o1,c1,2024-05-01T10:00:00Z,1.00\n")
        handle.write(b"o2,c1,2024-05-01T10:00:00Z," + b"7" * FIFTY_MIB + b"\n")
        handle.write(b"o3,c1,2024-05-01T10:00:00Z,3.00\n")


def long_quoted(path: Path) -> None:
    """As long_unquoted, the amount quoted and broken over lines 3-5; o3 is line 6."""
    third = FIFTY_MIB // 3
    digits = [b"7" * third, b"7" * third, b"7" * (FIFTY_MIB - 2 * third)]
    with path.open("wb") as handle:
        handle.write(HEADER + b"o1,c1,2024-05-01T10:00:00Z,1.00\n")
        handle.write(b'o2,c1,2024-05-01T10:00:00Z,"' + b"\n".join(digits) + b'"\n')
        handle.write(b"o3,c1,2024-05-01T10:00:00Z,3.00\n")


def header_bomb(path: Path) -> None:
    """A gzip whose first line is 100 MiB of "a", without a line break."""
    block = b"a" * (1 << 20)
    with gzip.open(path, "wb", compresslevel=1) as handle:
        for _ in range(100):
            handle.write(block)


GENERATED = {
    "long_unquoted": long_unquoted,
    "long_quoted": long_quoted,
    "header_bomb": header_bomb,
}


def customer_key(email: str) -> str:
    """The documented key, computed independently of the SQL: sha256(salt + address)."""
    return hashlib.sha256((SALT + email.strip().lower()).encode()).hexdigest()


def expected_value(value):
    if isinstance(value, str) and value.startswith("hash:"):
        return customer_key(value.removeprefix("hash:"))
    return value


def place(landing: Path, target: str, source: str) -> None:
    """Put a corpus file (or a generated file, a link, nothing) at landing/target."""
    path = landing / target
    path.parent.mkdir(parents=True, exist_ok=True)
    if source == "delete":
        path.unlink()
    elif source.startswith("generate:"):
        GENERATED[source.removeprefix("generate:")](path)
    elif source.startswith("link:"):
        outside = landing.parent / "outside"
        outside.mkdir(exist_ok=True)
        name = source.removeprefix("link:")
        shutil.copyfile(CORPUS / name, outside / name)
        path.symlink_to(outside / name)
    elif source.startswith("link-to:"):
        path.symlink_to(landing / source.removeprefix("link-to:"))
    else:
        shutil.copyfile(CORPUS / source, path)


def run_case(case: dict, root: Path) -> IngestError | None:
    landing, build = root / case.get("landing", "landing"), root / "build.duckdb"
    config = load(overrides=case.get("config"))
    error = None
    for number, run in enumerate(case["runs"]):
        assert error is None, "only the last run of a case may fail"
        for target, source in run.items():
            place(landing, target, source)
        landing.mkdir(exist_ok=True)
        try:
            ingest(build, landing, f"run{number}", config=config, salt=SALT)
        except IngestError as exc:
            error = exc
    return error


@pytest.fixture(scope="module")
def corpus_size() -> int:
    return len(
        {path.name for path in CORPUS.iterdir() if path.suffix != ".yml"} - {".gitattributes"}
    )


def test_corpus_has_at_least_25_files(corpus_size):
    assert corpus_size >= 25


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_corpus_case(case: dict, tmp_path: Path):
    error = run_case(case, tmp_path)
    if "error" in case:
        assert error is not None, "the run should have failed"
        for text in case["error"]:
            assert text in str(error)
    else:
        assert error is None, f"unexpected failure: {error}"

    with duckdb.connect(str(tmp_path / "build.duckdb"), read_only=True) as con:
        manifest = con.execute(
            "select file_name, status, rows_read, rows_loaded, rows_quarantined, "
            "rows_duplicate, message from audit.ingested_files order by file_name, run_id"
        ).fetchall()
        actual_files: dict[str, list[list]] = {}
        for file_name, *counts, _ in manifest:
            actual_files.setdefault(file_name, []).append(counts)
        assert actual_files == case["files"]
        messages = " | ".join(row[-1] or "" for row in manifest)
        for text in case.get("message", []):
            assert text in messages

        quarantine = con.execute(
            'select file_name, line_number, "column", reason from audit.quarantine '
            "order by file_name, line_number"
        ).fetchall()
        expected = case["quarantine"]
        assert [row[:3] for row in quarantine] == [tuple(row[:3]) for row in expected]
        for (*_, reason), (*_, prefix) in zip(quarantine, expected, strict=True):
            assert reason.startswith(prefix), f"{reason!r} does not start with {prefix!r}"

        for check in case.get("raw", []):
            rows = [list(row) for row in con.execute(check["sql"]).fetchall()]
            assert rows == [[expected_value(v) for v in row] for row in check["rows"]]

        assert_rows_conserved(con)
        assert_no_clear_text_emails(con)
        for text in case.get("absent", []):
            assert text not in str(error or "")
            assert_nowhere(con, text)


def assert_rows_conserved(con: duckdb.DuckDBPyConnection) -> None:
    """Every delivery accounts for each row it read; audit.quarantine holds exactly its
    quarantined rows; raw.<source> holds exactly the current deliveries' loaded rows."""
    unbalanced = con.execute(
        "select file_name from audit.ingested_files where status in ('loaded', 'replaced') "
        "and rows_read <> rows_loaded + rows_quarantined + rows_duplicate"
    ).fetchall()
    assert unbalanced == []
    quarantine_mismatch = con.execute(
        """
        select files.file_name, files.rows_quarantined, count(quarantine.file_name)
        from audit.ingested_files as files
        left join audit.quarantine as quarantine
            on quarantine.file_name = files.file_name and quarantine.run_id = files.run_id
            and quarantine.source = files.source
        where files.status in ('loaded', 'replaced')
        group by all
        having count(quarantine.file_name) <> files.rows_quarantined
        """
    ).fetchall()
    assert quarantine_mismatch == []
    for source in SOURCES:
        expected = dict(
            con.execute(
                "select file_name, rows_loaded from audit.ingested_files "
                "where source = ? and status = 'loaded' and rows_loaded > 0",
                [source],
            ).fetchall()
        )
        actual = dict(
            con.execute(f"select _file_name, count(*) from raw.{source} group by 1").fetchall()
        )
        assert actual == expected, source


def text_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    return con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_schema in ('raw', 'audit') and data_type = 'VARCHAR'"
    ).fetchall()


def assert_no_clear_text_emails(con: duckdb.DuckDBPyConnection) -> None:
    scans = " union all ".join(
        f"select '{schema}.{table}.{column}', \"{column}\" from {schema}.{table} "
        f"where regexp_matches(\"{column}\", '{EMAIL_LIKE}')"
        for schema, table, column in text_columns(con)
    )
    assert con.execute(scans).fetchall() == []


def assert_nowhere(con: duckdb.DuckDBPyConnection, text: str) -> None:
    scans = " union all ".join(
        f"select '{schema}.{table}.{column}', \"{column}\" from {schema}.{table} "
        f'where contains(lower("{column}"), lower(?))'
        for schema, table, column in text_columns(con)
    )
    found = con.execute(scans, [text] * len(text_columns(con))).fetchall()
    assert found == [], f"{text!r} is stored: {found}"
