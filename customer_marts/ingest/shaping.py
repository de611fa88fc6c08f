"""Shaping, in SQL: landed rows collapsed, derived and keyed, as canonical text.

Line items collapse into one record per key when configured, derived columns are
computed (a preset's status rules), an e-mail becomes the salted customer key
(CUSTOMER_KEY_SALT, refused when weak; there is no default) and the clear-text
e-mail is dropped.
"""

from __future__ import annotations

import duckdb

from customer_marts.config import Settings
from customer_marts.ingest.contract import EMAIL
from customer_marts.ingest.sources import SourceConfig
from customer_marts.ingest.sql import mask_emails, names_list, quote

# CUSTOMER_KEY_SALT must be a secret: anyone who knows it can hash a list of addresses
# and match the keys. Shorter ones, and values published anywhere, are refused.
MIN_SALT_LENGTH = 16

PUBLIC_SALTS = ("customer-marts-demo-salt", "change-me")


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


def resolve_salt(salt: str | None = None) -> str | None:
    """The customer-key salt: given, else CUSTOMER_KEY_SALT. There is no default: the
    demo data keys customers by id, and real e-mails need a secret salt."""
    return salt or Settings.from_env().customer_key_salt


def customer_key_sql(email: str) -> str:
    """The customer key of an e-mail: hex SHA-256 of the salt + the trimmed, lower-cased
    address (NULL without an address). The salt is a session variable, so it never
    appears in SQL text or logs."""
    address = f"nullif(lower(trim({email})), '')"
    return f"sha256(getvariable('customer_key_salt') || {address})"


def collapse_group(key: tuple[str, ...]) -> str:
    """GROUP BY terms of collapsing: one record per key in a file; a row whose key is
    incomplete stays a record of its own (it is then quarantined for the missing value).
    Its line number is a term of its own, never folded into a key value (an order
    named '#5' is not the keyless row on line 5)."""
    missing = " or ".join(f"{quote(name)} is null" for name in key)
    return f"{names_list(key)}, case when {missing} then _line_number end"


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
        source = f"(select file_seq, file_name, _line_number, {trimmed} from {landed})"
    if config.collapse:
        firsts = ", ".join(
            f"first({name} order by _line_number) filter (where {name} is not null) as {name}"
            for name in names
        )
        source = f"""(
            select file_seq, any_value(file_name) as file_name,
                min(_line_number) as _line_number, {firsts}
            from {source}
            group by file_seq, {collapse_group(config.contract.key)}
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
        select file_seq, file_name, _line_number, {", ".join([*outputs, *helpers, masked])}
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
