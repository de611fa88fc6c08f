"""The row rules, in SQL: every landed row cast and checked in one set-based pass.

`create_checked_table` turns the view `shaped` into rows of a `checked` table (created,
or appended to batch by batch): each row's values parsed (timestamps in the source's
time zone, numbers with its decimal separator), converted to the reporting currency, and
the first broken rule's column and reason (NULL for a valid row). `mark_duplicates`
then marks, over all of a run's rows, the rows that a later row of the same key (or
unit) supersedes.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from customer_marts.ingest.contract import EMAIL_PATTERN, Column
from customer_marts.ingest.sources import SourceConfig
from customer_marts.ingest.sql import key_in, literal, names_list, quote
from customer_marts.runs.schema import column_type

MISSING = "missing required value"

# A timestamp's offset written after a space ("2024-01-15 10:23:45 -0500", as in
# Shopify exports) is moved next to the time, where DuckDB's cast reads it.
SPACED_OFFSET = r"\s+([+-][0-9]{2}(:?[0-9]{2})?|Z|UTC)$"


@dataclass(frozen=True)
class RowOptions:
    """What a source's configuration changes in the row rules."""

    decimal_separator: str = "."
    reporting_currency: str = "USD"
    has_rates: bool = False


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
    if column.kind == "date":
        return f"try_cast({text} as date)"
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
    elif column.kind == "date":
        rules.append((f"{text} is not null and {value} is null", "unparseable date"))
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


def create_checked_table(
    con: duckdb.DuckDBPyConnection,
    config: SourceConfig,
    options: RowOptions,
    checked: str = "checked",
    append: bool = False,
) -> None:
    """The rows of the view `shaped`, cast and checked, as the temp table `checked`
    (with `append`, added to it)."""
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
    rule, rule_columns, rule_reasons = failure_case(config, options)
    names = ", ".join(quote(c.name) for c in contract.columns)
    into = f"insert into {checked}" if append else f"create or replace temp table {checked} as"
    con.execute(
        f"""
        {into}
        with texts as (
            select file_seq, file_name, _line_number{rate}, {texts}
            from {source} as src
        ),
        typed as (
            select *{", " + values if values else ""} from texts
        ),
        cased as (
            select file_seq, file_name, _line_number, {rule} as failed_rule, {finals}
            from typed
        )
        select
            file_seq, file_name, _line_number,
            ({rule_columns})[failed_rule] as failed_column,
            ({rule_reasons})[failed_rule] as failed_reason,
            {names},
            false as is_duplicate
        from cased
        """
    )


def mark_duplicates(con: duckdb.DuckDBPyConnection, config: SourceConfig, checked: str) -> None:
    """Set is_duplicate on the rows of `checked` that a later row supersedes."""
    contract = config.contract
    key, unit = names_list(contract.key), names_list(contract.unit)
    # Duplicates: of the valid rows sharing a key, the latest file (then the latest line)
    # wins; where a later delivery replaces a larger unit (an order's lines), a row whose
    # unit a later file holds is one too. Only the rows of keys that repeat (and of units
    # that more than one file holds) are numbered: numbering every row would sort them
    # all (and most orders have several lines).
    valid = f"from {checked} where failed_reason is null"
    repeated = key_in(
        contract.key,
        "candidate",
        f"select {key} {valid} group by {key} having count(*) > 1",
    )
    replaced = ""
    if contract.unit != contract.key:
        spread = f"select {unit} {valid} group by {unit} having min(file_seq) < max(file_seq)"
        repeated = f"({repeated} or {key_in(contract.unit, 'candidate', spread)})"
        replaced = f" or file_seq < max(file_seq) over (partition by {unit})"
    con.execute(
        f"""
        update {checked} set is_duplicate = true
        from (
            select file_seq, _line_number
            from (
                select
                    file_seq, _line_number,
                    row_number() over (
                        partition by {key} order by file_seq desc, _line_number desc
                    ) > 1{replaced} as superseded
                from {checked} as candidate
                where failed_reason is null and {repeated}
            )
            where superseded
        ) as later
        where {checked}.file_seq = later.file_seq
            and {checked}._line_number = later._line_number
        """
    )
