"""Ingest landed export files into the build database's `raw` tables.

For each source (the contract in `contract.py`, configured in `sources.yml`):
1. lists the files matching its globs in its landing folder (a link leading out of
   LANDING_DIR is not followed: a `skipped` manifest row says so) and fingerprints
   them (SHA-256); a file ingested earlier and now gone is noted on its manifest row
   and in the log (its rows stay);
2. skips content it has already ingested, under any name, and treats a known
   name with new content as a correction that replaces that file's earlier rows;
3. reads every new file with DuckDB's own readers, all columns as text, and maps
   the export's header onto the canonical columns (`landing.py`; a missing
   required column fails the run, naming the file and the columns found), checking
   each file's rows read against its own record count (`records.py`);
4. shapes the rows in SQL: collapses line items into one record per key when
   configured, derives columns (a preset's status rules), turns an e-mail into
   the salted customer key (CUSTOMER_KEY_SALT, refused when weak; there is no
   default) and drops the clear-text e-mail;
5. casts and checks every row in one set-based SQL pass: a row that breaks a
   rule goes to `audit.quarantine` with its line number, column and reason;
6. keeps one row per key (the latest file, then the latest line wins) and
   counts the others as duplicates;
7. writes one `audit.ingested_files` row per file, so that for every loaded
   file rows_read = rows_loaded + rows_quarantined + rows_duplicate, and the
   rows of `raw.<source>` are exactly the sum of rows_loaded.

Everything happens in one transaction: a failing run leaves the raw tables as
they were. Rows dated after the as-of date are loaded too; the dbt staging
models leave them out until a run whose as-of date covers them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from customer_marts.config import DEMO_MARKER, Settings
from customer_marts.ingest.contract import EMAIL, EMAIL_PATTERN, Column
from customer_marts.ingest.landing import (
    Landed,
    LandingFile,
    land,
    literal,
    mask_emails,
    path_literal,
    quote,
    reader_error,
)
from customer_marts.ingest.sources import SourceConfig, SourceConfigError, SourcesConfig
from customer_marts.ingest.sources import load as load_sources
from customer_marts.warehouse import column_type, connect, ensure_schema

log = logging.getLogger(__name__)

MISSING = "missing required value"
# A timestamp's offset written after a space ("2024-01-15 10:23:45 -0500", as in
# Shopify exports) is moved next to the time, where DuckDB's cast reads it.
SPACED_OFFSET = r"\s+([+-][0-9]{2}(:?[0-9]{2})?|Z|UTC)$"
# CUSTOMER_KEY_SALT must be a secret: anyone who knows it can hash a list of addresses
# and match the keys. Shorter ones, and values published anywhere, are refused.
MIN_SALT_LENGTH = 16
PUBLIC_SALTS = ("customer-marts-demo-salt", "change-me")
LINK_OUT = "a symbolic link to a file outside LANDING_DIR: not followed, not read"
GONE = "no longer in LANDING_DIR (its rows are kept)"
NOT_DEMO = "not written by the demo generator, beside the demo data (_demo.json)"


class IngestError(Exception):
    """A file the pipeline cannot read as the contract requires (the run fails)."""

    def __init__(self, message: str, failures: list[tuple[str, str, str]] | None = None):
        super().__init__(message)
        self.failures = failures or []  # (source, file name, reason) per failed file


@dataclass
class IngestSummary:
    files_loaded: int = 0
    files_skipped: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    files_gone: int = 0  # ingested earlier, no longer in LANDING_DIR (rows kept)
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class RowOptions:
    """What a source's configuration changes in the row rules."""

    decimal_separator: str = "."
    reporting_currency: str = "USD"
    has_rates: bool = False


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_files(landing_dir: Path, config: SourceConfig) -> tuple[list[Path], list[Path]]:
    """(the source's files, links among them that lead out of LANDING_DIR), by name.

    A file inside LANDING_DIR reached through a link is read; one outside it is not
    (the pipeline reads exports, not whatever a link points at)."""
    folder = landing_dir / config.folder
    found = {path for pattern in config.globs for path in folder.glob(pattern)}
    root = landing_dir.resolve()
    files, outside = [], []
    for path in sorted(found):
        if not path.resolve().is_relative_to(root):
            outside.append(path)
        elif path.is_file():
            files.append(path)
    return files, outside


def salt_problem(salt: str | None) -> str | None:
    """Why `salt` cannot key real e-mail addresses, or None."""
    if not salt:
        return "CUSTOMER_KEY_SALT is not set"
    if len(salt) < MIN_SALT_LENGTH:
        return (
            f"CUSTOMER_KEY_SALT is too short ({len(salt)} characters; at least "
            f"{MIN_SALT_LENGTH}, better 64 random hex digits)"
        )
    if salt.strip().lower() in PUBLIC_SALTS or len(set(salt)) < 6:
        return "CUSTOMER_KEY_SALT is a published or trivial value"
    return None


def demo_files(landing_dir: Path) -> dict[str, str] | None:
    """{file name: sha256} the demo generator wrote, if LANDING_DIR holds the demo data."""
    marker = landing_dir / DEMO_MARKER
    if not marker.is_file():
        return None
    try:
        files = json.loads(marker.read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return files if isinstance(files, dict) else None


# ---------------------------------------------------------------- row rules (SQL)


def text_of(column: Column, options: RowOptions) -> str:
    """The landed text of a column, trimmed and normalised, with '' as NULL."""
    text = f"nullif(trim({quote(column.name)}), '')"
    if column.lowercase or column.kind == "enum":
        text = f"lower({text})"
    if column.kind == "currency":
        text = f"upper({text})"
    if column.kind in ("decimal", "integer") and options.decimal_separator == ",":
        # "1.234,56" -> 1234.56 and "12,5" -> 12.5; a "." that does not group thousands
        # ("12.50") is ambiguous, so it is left unparseable rather than read as 1250.
        grouped = r"[+-]?[0-9]{1,3}(\.[0-9]{3})+(,[0-9]*)?"
        text = (
            f"case when regexp_full_match({text}, {literal(grouped)}) "
            f"then replace(replace({text}, '.', ''), ',', '.') "
            f"when contains({text}, '.') then {text} || ' (ambiguous)' "
            f"else replace({text}, ',', '.') end"
        )
    return text


def value_name(column: Column) -> str:
    return quote(f"{column.name}__value")


def parsed_value(column: Column) -> str | None:
    """SQL that parses a column's normalised text (columns that need parsing only)."""
    text = quote(column.name)
    if column.kind == "timestamp":
        # Offsets are honoured; a naive value is read in the session time zone,
        # which is set to the source's configured time zone while checking.
        spaced = f"regexp_replace({text}, {literal(SPACED_OFFSET)}, '\\1')"
        return (
            f"(coalesce(try_cast({text} as timestamptz), try_cast({spaced} as timestamptz)) "
            "at time zone 'UTC')"
        )
    if column.kind == "decimal":
        return f"try_cast({text} as {column_type(column)})"
    if column.kind == "integer":
        return f"try_cast(try_cast({text} as double) as {column_type(column)})"
    return None


def row_rules(column: Column, options: RowOptions) -> list[tuple[str, str]]:
    """(condition that breaks the rule, reason) pairs for one column, in order."""
    text, value = quote(column.name), value_name(column)
    rules: list[tuple[str, str]] = []
    if column.required:
        rules.append((f"{text} is null", MISSING))
    if column.rejects_emails:
        rules.append(
            (
                f"contains({text}, '@')",
                "looks like an e-mail address (set customer_key: email to use its salted hash)",
            )
        )
    elif column.kind in ("text", "enum", "currency") and not column.free_text:
        rules.append(
            (
                # CASE, not AND: DuckDB would run the pattern on every row
                f"case when contains({text}, '@') "
                f"then regexp_matches({text}, {literal(EMAIL_PATTERN)}) else false end",
                "looks like an e-mail address (never stored outside a free-text column)",
            )
        )
    if column.kind == "timestamp":
        rules.append((f"{text} is not null and {value} is null", "unparseable timestamp"))
    elif column.kind == "decimal":
        rules.append((f"{text} is not null and {value} is null", "unparseable number"))
    elif column.kind == "integer":
        rules.append(
            (
                f"{text} is not null and not regexp_full_match({text}, '[+-]?[0-9]+(\\.0*)?')",
                "not an integer",
            )
        )
    if column.kind in ("decimal", "integer"):
        if column.minimum is not None and column.maximum is not None:
            rules.append(
                (
                    f"{text} is not null and ({value} is null or "
                    f"{value} not between {column.minimum:g} and {column.maximum:g})",
                    f"outside {column.minimum:g}..{column.maximum:g}",
                )
            )
        elif column.minimum is not None:
            reason = "negative value" if column.minimum == 0 else f"below {column.minimum:g}"
            rules.append((f"{value} < {column.minimum:g}", reason))
    if column.kind == "enum":
        accepted = ", ".join(literal(value) for value in column.accepted)
        rules.append(
            (
                f"{text} is not null and {text} not in ({accepted})",
                f"unknown value (accepted: {', '.join(column.accepted)})",
            )
        )
    if column.kind == "currency":
        other = f"{text} is not null and {text} <> {literal(options.reporting_currency)}"
        if options.has_rates:
            rules.append((f"{other} and _rate is null", "no rate for this currency in rates_file"))
        else:
            rules.append(
                (other, f"not the reporting currency {options.reporting_currency} (no rates_file)")
            )
    return rules


def final_value(column: Column, options: RowOptions, currency: Column | None) -> str:
    """The value stored in raw: parsed, defaulted, converted to the reporting currency."""
    value = parsed_value(column) and value_name(column)
    if value is None:
        text = quote(column.name)
        return f"coalesce({text}, {literal(column.default)})" if column.default else text
    if currency is not None and options.has_rates:
        code = quote(currency.name)
        rate = (
            f"case when {code} is null or {code} = {literal(options.reporting_currency)} "
            "then 1 else _rate end"
        )
        return f"cast({value} * {rate} as {column_type(column)})"
    return value


def failure_case(config: SourceConfig, options: RowOptions) -> tuple[str, str, str]:
    """(CASE expression giving the number of the first broken rule, from 1, or NULL;
    the list of the rules' columns; the list of their reasons), so that the rules
    are evaluated once per row for both."""
    rules = [
        (column.name, condition, reason)
        for column in config.contract.columns
        for condition, reason in row_rules(column, options)
    ]
    branches = [
        f"when {condition} then {number}" for number, (_, condition, _) in enumerate(rules, 1)
    ]
    columns = ", ".join(literal(column) for column, _, _ in rules)
    reasons = ", ".join(literal(reason) for _, _, reason in rules)
    return "case " + " ".join(branches) + " end", f"[{columns}]", f"[{reasons}]"


# ---------------------------------------------------------------- shaping (SQL)


def customer_key_sql(email: str) -> str:
    """The customer key of an e-mail: hex SHA-256 of the salt + the trimmed, lower-cased
    address (NULL without an address). The salt is a session variable, so it never
    appears in SQL text or logs."""
    address = f"nullif(lower(trim({email})), '')"
    return f"sha256(getvariable('customer_key_salt') || {address})"


def create_shaped_view(con: duckdb.DuckDBPyConnection, config: SourceConfig, landed: str) -> None:
    """The view `shaped`: landed rows collapsed, derived and keyed, as canonical text.

    With `collapse`, the rows sharing a key in one file are one record: each column
    takes its first non-empty value in line order and the record has the line
    number of its first line (rows without a key stay records of their own).
    """
    names = [quote(target) for target in config.targets]
    source = landed
    if config.collapse or config.derive:
        # Derive expressions and collapsing see trimmed text, NULL when empty.
        trimmed = ", ".join(f"nullif(trim({name}), '') as {name}" for name in names)
        source = f"(select file_seq, file_name, line_number, {trimmed} from {landed})"
    if config.collapse:
        key = quote(config.contract.key)
        firsts = ", ".join(
            f"first({name} order by line_number) filter (where {name} is not null) as {name}"
            for name in names
        )
        source = f"""(
            select file_seq, any_value(file_name) as file_name,
                min(line_number) as line_number, {firsts}
            from {source}
            group by file_seq, coalesce({key}, '#' || line_number)
        )"""
    derive = dict(config.derive)
    outputs = []
    for column in config.contract.columns:
        if config.hashes_email and column.name == config.contract.customer_column:
            expression = customer_key_sql(quote(EMAIL))
        elif column.name in derive:
            expression = f"({derive[column.name]})"
        else:
            expression = quote(column.name)
        if column.free_text:
            expression = mask_emails(expression)
        outputs.append(f"{expression} as {quote(column.name)}")
    helpers = [quote(helper) for helper in config.helpers]
    email = quote(EMAIL)
    masked = f"case when nullif(trim({email}), '') is not null then '<masked>' end as {email}"
    con.execute(
        f"""
        create or replace temp view shaped as
        select file_seq, file_name, line_number, {", ".join([*outputs, *helpers, masked])}
        from {source} as src
        """
    )


def raw_record_sql(config: SourceConfig) -> str:
    """JSON of a shaped record (canonical and helper columns), every value's e-mail
    addresses masked (and `email` itself shown as <masked>)."""
    names = [*config.contract.column_names, *config.helpers]
    values = [f"{quote(n)} := {mask_emails(quote(n))}" for n in names]
    values.append(f"{quote(EMAIL)} := {quote(EMAIL)}")
    return f"to_json(struct_pack({', '.join(values)}))::varchar"


def create_checked_table(
    con: duckdb.DuckDBPyConnection, config: SourceConfig, options: RowOptions
) -> None:
    contract = config.contract
    currency_of = {
        column.name: contract.column(column.currency_column)
        for column in contract.columns
        if column.currency_column
    }
    uses_rates = options.has_rates and bool(currency_of)
    source = "shaped"
    if uses_rates:
        code = next(iter(currency_of.values())).name
        source = (
            f"(select shaped.*, rates.rate as _rate from shaped left join rates "
            f"on rates.currency = upper(trim(shaped.{quote(code)})))"
        )
    rate = ", _rate" if uses_rates else ""
    if not uses_rates:
        options = RowOptions(options.decimal_separator, options.reporting_currency)
    texts = ", ".join(f"{text_of(c, options)} as {quote(c.name)}" for c in contract.columns)
    values = ", ".join(
        f"{parsed} as {value_name(c)}"
        for c in contract.columns
        if (parsed := parsed_value(c)) is not None
    )
    finals = ", ".join(
        f"{final_value(c, options, currency_of.get(c.name))} as {quote(c.name)}"
        for c in contract.columns
    )
    key = quote(contract.key)
    rule, rule_columns, rule_reasons = failure_case(config, options)
    names = ", ".join(quote(c.name) for c in contract.columns)
    con.execute(
        f"""
        create or replace temp table checked as
        with texts as (
            select file_seq, file_name, line_number{rate}, {texts}
            from {source} as src
        ),
        typed as (
            select *{", " + values if values else ""} from texts
        ),
        cased as (
            select file_seq, file_name, line_number, {rule} as failed_rule, {finals}
            from typed
        )
        select
            file_seq, file_name, line_number,
            ({rule_columns})[failed_rule] as failed_column,
            ({rule_reasons})[failed_rule] as failed_reason,
            {names},
            false as is_duplicate
        from cased
        """
    )
    # Duplicates: of the valid rows sharing a key, the latest file (then the latest line)
    # wins. Only keys that repeat are numbered: numbering every row would sort them all.
    con.execute(
        f"""
        update checked set is_duplicate = true
        from (
            select file_seq, line_number
            from (
                select
                    file_seq, line_number,
                    row_number() over (
                        partition by {key} order by file_seq desc, line_number desc
                    ) as number
                from checked
                where failed_reason is null and {key} in (
                    select {key} from checked where failed_reason is null
                    group by {key} having count(*) > 1
                )
            )
            where number > 1
        ) as later
        where checked.file_seq = later.file_seq and checked.line_number = later.line_number
        """
    )


# ---------------------------------------------------------------- one source


@dataclass
class _Plan:
    """One source's work for this run, found and read before the load transaction."""

    config: SourceConfig
    files: list[LandingFile] = field(default_factory=list)  # new or changed, to load
    shas: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # manifest messages by file
    replaced: list[str] = field(default_factory=list)  # names whose earlier rows go
    manifest_rows: list[dict[str, object]] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {"files_loaded": 0, "files_skipped": 0, "files_gone": 0}
    )
    landed: Landed | None = None
    gone: list[str] = field(default_factory=list)  # loaded earlier, now missing
    back: list[str] = field(default_factory=list)  # noted missing earlier, present again


def _plan_source(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    config: SourceConfig,
    run_id: str,
    salt: str | None,
) -> _Plan:
    """Fingerprint the source's files, decide which to load, and land those.

    Raises IngestError naming every file that cannot be read.
    """
    plan = _Plan(config)
    source = config.name
    files, outside = list_files(landing_dir, config)
    rows = con.execute(
        "select file_name, sha256, status, message from audit.ingested_files "
        "where source = ? and status in ('loaded', 'skipped')",
        [source],
    ).fetchall()
    manifest = {(name, sha): status for name, sha, status, _ in rows}
    loaded_shas = {sha: name for (name, sha), status in manifest.items() if status == "loaded"}
    loaded_names = {name for (name, _), status in manifest.items() if status == "loaded"}
    present = {path.relative_to(landing_dir).as_posix() for path in [*files, *outside]}
    noted = {name for name, _, status, message in rows if GONE in (message or "")}
    plan.gone = sorted(loaded_names - present - noted)
    plan.back = sorted(noted & present)
    plan.counts["files_gone"] = len(loaded_names - present)
    if loaded_names - present:
        missing = sorted(loaded_names - present)
        log.warning(
            "%s: %d file(s) ingested earlier are no longer in LANDING_DIR; their rows are "
            "kept: %s%s",
            source,
            len(missing),
            ", ".join(missing[:5]),
            ", ..." if len(missing) > 5 else "",
        )
    for path in outside:
        file_name = path.relative_to(landing_dir).as_posix()
        if (file_name, None) not in manifest:
            log.warning("%s: %s", file_name, LINK_OUT)
            plan.manifest_rows.append(
                _manifest_row(source, file_name, None, run_id, status="skipped", message=LINK_OUT)
            )
            plan.counts["files_skipped"] += 1
    demo = demo_files(landing_dir)
    for seq, path in enumerate(files):
        file_name = path.relative_to(landing_dir).as_posix()
        sha = sha256_of(path)
        if (file_name, sha) in manifest:
            continue  # ingested (or skipped) in an earlier run: nothing to do
        if sha in loaded_shas:  # an earlier run's content, or a file of this run
            plan.manifest_rows.append(
                _manifest_row(
                    source,
                    file_name,
                    sha,
                    run_id,
                    status="skipped",
                    message=f"same content as {loaded_shas[sha]}",
                )
            )
            plan.counts["files_skipped"] += 1
            continue
        plan.files.append(LandingFile(seq, path, file_name))
        plan.shas[file_name] = sha
        loaded_shas.setdefault(sha, file_name)
        if demo is not None and demo.get(file_name) != sha:
            log.warning("%s: %s", file_name, NOT_DEMO)
            plan.notes[file_name] = NOT_DEMO
    if not plan.files:
        return plan
    if config.hashes_email and (problem := salt_problem(salt)):
        raise IngestError(
            f"{source}: the customer key is the e-mail (customer_key: email) but {problem}. "
            'Set it to a long random secret, e.g. the output of python -c "import secrets; '
            "print(secrets.token_hex(32))\" (README, 'Sources, presets and mappings'), and "
            "keep it: changing it changes every key.",
            [(source, file.name, f"{problem} (customer_key: email)") for file in plan.files],
        )
    # Corrections: a known name with new content replaces that file's rows.
    plan.replaced = [file.name for file in plan.files if file.name in loaded_names]
    plan.landed = land(con, config, plan.files)
    if plan.landed.errors:
        raise IngestError(
            "\n".join(str(error) for error in plan.landed.errors),
            [(source, error.file_name, error.reason) for error in plan.landed.errors],
        )
    return plan


def _load_source(
    con: duckdb.DuckDBPyConnection, plan: _Plan, options: RowOptions, run_id: str
) -> dict[str, int]:
    """Check the landed rows and write raw, quarantine and manifest (in the transaction)."""
    config, landed, counts = plan.config, plan.landed, plan.counts
    source = config.name
    _note_gone(con, source, plan.gone, plan.back, run_id)
    if landed is None:
        _write_manifest(con, plan.manifest_rows)
        return counts
    if plan.replaced:
        names = ", ".join(literal(name) for name in plan.replaced)
        con.execute(f"delete from raw.{source} where _file_name in ({names})")
        con.execute(
            f"update audit.ingested_files set status = 'replaced' "
            f"where source = ? and status = 'loaded' and file_name in ({names})",
            [source],
        )

    create_shaped_view(con, config, landed.landed)
    con.execute(f"set TimeZone = {literal(config.timezone)}")
    try:
        create_checked_table(con, config, options)
    finally:
        con.execute("set TimeZone = 'UTC'")
    _quarantine(con, config, landed.rejected, run_id)
    key = quote(config.contract.key)
    # The latest file wins: rows of earlier files with the same key become duplicates.
    superseded = con.execute(
        f"""
        delete from raw.{source}
        where {key} in (
            select {key} from checked where failed_reason is null and not is_duplicate
        )
        returning _file_name
        """
    ).fetchall()
    superseded_by_file: dict[str, int] = {}
    for (name,) in superseded:
        superseded_by_file[name] = superseded_by_file.get(name, 0) + 1
    for name, count in superseded_by_file.items():
        con.execute(
            "update audit.ingested_files set rows_loaded = rows_loaded - ?, "
            "rows_duplicate = rows_duplicate + ? "
            "where source = ? and file_name = ? and status = 'loaded'",
            [count, count, source, name],
        )
    columns = ", ".join(quote(column) for column in config.contract.column_names)
    con.execute(
        f"""
        insert into raw.{source} ({columns}, _file_name, _line_number, _run_id)
        select {columns}, file_name, line_number, ?
        from checked where failed_reason is null and not is_duplicate
        """,
        [run_id],
    )
    stats = _file_stats(con, landed.rejected)
    notes = _notes(con, config, landed)
    for file in plan.files:
        read, loaded, quarantined, duplicate = stats.get(file.name, (0, 0, 0, 0))
        message = "; ".join(
            part
            for part in (
                notes.get(file.name),
                "replaces an earlier delivery" if file.name in plan.replaced else None,
                plan.notes.get(file.name),
            )
            if part
        )
        plan.manifest_rows.append(
            _manifest_row(
                source,
                file.name,
                plan.shas[file.name],
                run_id,
                status="loaded",
                rows=(read, loaded, quarantined, duplicate),
                extra=landed.extras.get(file.name),
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
    _write_manifest(con, plan.manifest_rows)
    return counts


def _note_gone(
    con: duckdb.DuckDBPyConnection, source: str, gone: list[str], back: list[str], run_id: str
) -> None:
    """Say on a loaded file's manifest row that it left LANDING_DIR (and since which run),
    and take the note off again when it is back."""
    if gone:
        con.execute(
            "update audit.ingested_files set message = concat_ws('; ', message, ?) "
            "where source = ? and status = 'loaded' and file_name in (select unnest(?))",
            [f"{GONE}; noticed by run {run_id}", source, gone],
        )
    if back:
        con.execute(
            "update audit.ingested_files set message = nullif(regexp_replace(message, "
            "'(; )?' || regexp_escape(?) || '; noticed by run [^;]*', ''), '') "
            "where source = ? and status = 'loaded' and file_name in (select unnest(?))",
            [GONE, source, back],
        )


def _quarantine(
    con: duckdb.DuckDBPyConnection, config: SourceConfig, rejected: str, run_id: str
) -> None:
    """Failed rows (with their shaped record) and malformed CSV records to audit.quarantine."""
    counts = con.execute(
        "select (select count(*) from checked where failed_reason is not null) "
        f"+ (select count(*) from {rejected})"
    ).fetchone()
    if not counts[0]:
        return
    con.execute(
        f"""
        insert into audit.quarantine
        with failed as (
            select file_seq, file_name, line_number, failed_column, failed_reason
            from checked where failed_reason is not null
        ),
        records as (
            select failed.*, {raw_record_sql(config)} as raw_record
            from failed join shaped using (file_seq, file_name, line_number)
            union all
            select file_seq, file_name, line_number, "column", reason, raw_record
            from {rejected}
        )
        select {literal(config.name)}, file_name, line_number, failed_column, failed_reason,
            raw_record, ?
        from records
        order by file_seq, line_number
        """,
        [run_id],
    )


def _file_stats(
    con: duckdb.DuckDBPyConnection, rejected: str
) -> dict[str, tuple[int, int, int, int]]:
    """(read, loaded, quarantined, duplicate) per file; a malformed record is a row read."""
    return {
        row[0]: row[1:]
        for row in con.execute(
            f"""
            with rows as (
                select file_name,
                    failed_reason is null and not is_duplicate as is_loaded,
                    failed_reason is not null as is_quarantined,
                    is_duplicate
                from checked
                union all
                select file_name, false, true, false from {rejected}
            )
            select file_name, count(*), count(*) filter (is_loaded),
                count(*) filter (is_quarantined), count(*) filter (is_duplicate)
            from rows group by file_name
            """
        ).fetchall()
    }


def _notes(con: duckdb.DuckDBPyConnection, config: SourceConfig, landed: Landed) -> dict[str, str]:
    """Manifest messages: empty files, and how line items were collapsed into records."""
    notes = dict(landed.notes)
    if config.collapse:
        lines = dict(
            con.execute(f"select file_name, count(*) from {landed.landed} group by 1").fetchall()
        )
        records = dict(con.execute("select file_name, count(*) from checked group by 1").fetchall())
        for file_name, count in lines.items():
            notes[file_name] = (
                f"{count} line(s) collapsed into {records.get(file_name, 0)} record(s), one per "
                f"{config.contract.key}; rows_* count records"
            )
    return notes


MANIFEST_COLUMNS = (
    "source",
    "file_name",
    "sha256",
    "rows_read",
    "rows_loaded",
    "rows_quarantined",
    "rows_duplicate",
    "status",
    "extra_columns",
    "message",
    "run_id",
)


def _manifest_row(
    source: str,
    file_name: str,
    sha: str | None,
    run_id: str,
    status: str,
    rows: tuple[int, int, int, int] = (0, 0, 0, 0),
    extra: list[str] | None = None,
    message: str | None = None,
) -> dict[str, object]:
    values = (source, file_name, sha, *rows, status, ", ".join(extra or []) or None, message)
    return dict(zip(MANIFEST_COLUMNS, (*values, run_id), strict=True))


def _write_manifest(con: duckdb.DuckDBPyConnection, rows: list[dict[str, object]]) -> None:
    """Insert manifest rows in one statement (one INSERT per file is slow for 700 files)."""
    if not rows:
        return
    names = ", ".join(MANIFEST_COLUMNS)
    values = ", ".join(f"row.{name}" for name in MANIFEST_COLUMNS)
    con.execute(
        f"insert into audit.ingested_files ({names}, loaded_at) "
        f"select {values}, now() from (select unnest(?) as row)",
        [rows],
    )


# ---------------------------------------------------------------- entry point


def resolve_salt(salt: str | None = None) -> str | None:
    """The customer-key salt: given, else CUSTOMER_KEY_SALT. There is no default: the
    demo data keys customers by id, and real e-mails need a secret salt."""
    return salt or Settings.from_env().customer_key_salt


def _load_rates(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """The rates file as the temp table `rates` (currency, rate), or IngestError."""
    if not path.is_file():
        raise IngestError(f"rates_file {path} does not exist (sources.yml, rates_file)")
    try:
        con.execute(
            f"""
            create or replace temp table rates as
            select upper(trim(currency)) as currency, trim(rate) as rate_text,
                try_cast(trim(rate) as decimal(18, 8)) as rate
            from read_csv({path_literal(path)}, all_varchar = true, header = true)
            """
        )
    except duckdb.Error as exc:
        raise IngestError(
            f"rates_file {path}: cannot be read as a CSV with columns currency, rate "
            f"({reader_error(exc)})"
        ) from exc
    (bad,) = con.execute(
        "select count(*) from (select 1 from rates qualify currency is null or rate is null "
        "or rate <= 0 or count(*) over (partition by currency) > 1)"
    ).fetchone()
    if bad:
        raise IngestError(
            f"rates_file {path}: each currency needs one positive rate; {bad} row(s) have "
            "no currency, a rate that is not a positive number, or a repeated currency"
        )


def ingest(
    build_db: Path,
    landing_dir: Path,
    run_id: str,
    sources: list[str] | None = None,
    config: SourcesConfig | None = None,
    salt: str | None = None,
) -> IngestSummary:
    """Ingest every new or changed file of the given sources (all by default).

    `config` defaults to sources.yml in CUSTOMER_MARTS_CONFIG_DIR; `salt` to
    CUSTOMER_KEY_SALT.
    """
    try:
        config = config or load_sources()
    except SourceConfigError as exc:
        raise IngestError(f"source configuration: {exc}") from exc
    salt = resolve_salt(salt)
    summary = IngestSummary()
    names = sources or list(config.sources)
    with connect(build_db) as con:
        ensure_schema(con)
        if salt and not salt_problem(salt):
            con.execute("set variable customer_key_salt = ?", [salt])
        # Read first, outside the transaction (a failed read would abort it) ...
        try:
            plans = _plan_sources(con, landing_dir, config, names, run_id, salt)
        except IngestError as exc:
            _record_failure(con, run_id, exc)
            raise
        # ... then write everything in one transaction: a failure leaves raw as it was.
        con.execute("begin transaction")
        try:
            for plan in plans:
                options = RowOptions(
                    plan.config.decimal_separator,
                    config.reporting_currency,
                    has_rates=config.rates_file is not None,
                )
                counts = _load_source(con, plan, options, run_id)
                summary.by_source[plan.config.name] = counts
                for attr, value in counts.items():
                    setattr(summary, attr, getattr(summary, attr) + value)
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")
    log.info(
        "ingested %d file(s) (%d skipped): %d rows read, %d loaded, %d quarantined, %d duplicate",
        summary.files_loaded,
        summary.files_skipped,
        summary.rows_read,
        summary.rows_loaded,
        summary.rows_quarantined,
        summary.rows_duplicate,
    )
    return summary


def _plan_sources(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    config: SourcesConfig,
    names: list[str],
    run_id: str,
    salt: str | None,
) -> list[_Plan]:
    """Plan every source; fail naming every unreadable file of every source at once."""
    rates = config.rates_path(landing_dir)
    if rates is not None:
        _load_rates(con, rates)
    plans, errors = [], []
    for name in names:
        try:
            plans.append(_plan_source(con, landing_dir, config.sources[name], run_id, salt))
        except IngestError as exc:
            errors.append(exc)
    if errors:
        raise IngestError(
            "\n".join(str(error) for error in errors),
            [failure for error in errors for failure in error.failures],
        )
    return plans


def _record_failure(con: duckdb.DuckDBPyConnection, run_id: str, error: IngestError) -> None:
    """Keep a manifest row for each file that failed, outside the rolled-back load."""
    _write_manifest(
        con,
        [
            _manifest_row(source, file_name, None, run_id, status="failed", message=reason)
            for source, file_name, reason in error.failures
        ],
    )
