"""The ingestion corpus: every malformed or unusual export in tests/unit/ingest_corpus/
has its expected outcome asserted (cases.yml: loaded, quarantined with a reason, or the
run fails with a named message), and for every case rows are conserved file by file
and no clear-text e-mail address reaches the database."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

from customer_marts.contract import SOURCES
from customer_marts.ingest import IngestError, ingest
from customer_marts.sources import load

CORPUS = Path(__file__).with_name("ingest_corpus")
CASES = yaml.safe_load((CORPUS / "cases.yml").read_text(encoding="utf-8"))
SALT = "corpus-salt"
# Anything shaped like an address; raw tables and audit must hold none.
EMAIL_LIKE = r"[^\s@<>,;]+@[^\s@<>,;]+\.[A-Za-z]{2,}"


def customer_key(email: str) -> str:
    """The documented key, computed independently of the SQL: sha256(salt + address)."""
    return hashlib.sha256((SALT + email.strip().lower()).encode()).hexdigest()


def expected_value(value):
    if isinstance(value, str) and value.startswith("hash:"):
        return customer_key(value.removeprefix("hash:"))
    return value


def run_case(case: dict, root: Path) -> IngestError | None:
    landing, build = root / "landing", root / "build.duckdb"
    config = load(overrides=case.get("config"))
    error = None
    for number, run in enumerate(case["runs"]):
        assert error is None, "only the last run of a case may fail"
        for target, corpus_file in run.items():
            (landing / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(CORPUS / corpus_file, landing / target)
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


def assert_no_clear_text_emails(con: duckdb.DuckDBPyConnection) -> None:
    columns = con.execute(
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_schema in ('raw', 'audit') and data_type = 'VARCHAR'"
    ).fetchall()
    scans = " union all ".join(
        f"select '{schema}.{table}.{column}', \"{column}\" from {schema}.{table} "
        f"where regexp_matches(\"{column}\", '{EMAIL_LIKE}')"
        for schema, table, column in columns
    )
    assert con.execute(scans).fetchall() == []
