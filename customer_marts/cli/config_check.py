"""Check the site configuration and the environment as the pipeline reads them, and say
what is wrong: the file, its line and the key (exit 1 if anything is).

- sources.yml and presets.yml in CUSTOMER_MARTS_CONFIG_DIR: YAML syntax, duplicate
  keys, unknown keys and sources, the type of every key, then the pipeline's own
  reading of them (customer_marts.ingest.sources.load: formats, encodings, time
  zones, presets, column mappings).
- The environment: the numbers, booleans and the date of docs/configuration.md, and
  the folders LANDING_DIR, WAREHOUSE_DIR, DBT_PROJECT_DIR, EXPECTATIONS_DIR and
  CUSTOMER_MARTS_CONFIG_DIR; CUSTOMER_KEY_SALT where a source keys customers by
  e-mail.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STRING, BOOL, LIST, MAPPING, NULL = "a string", "true or false", "a list", "a mapping", "null"
# The kinds of value each key may have (yaml tags): `glob` and `required` may also be
# one string; `rates_file` may be null.
KINDS = {
    "str": STRING,
    "bool": BOOL,
    "seq": LIST,
    "map": MAPPING,
    "null": NULL,
    "int": "a number",
    "float": "a number",
}
SOURCE_KEY_KINDS = {
    "folder": {STRING},
    "glob": {STRING, LIST},
    "format": {STRING},
    "delimiter": {STRING},
    "decimal_separator": {STRING},
    "encoding": {STRING},
    "timezone": {STRING},
    "customer_key": {STRING},
    "collapse": {BOOL},
    "columns": {MAPPING, NULL},
    "derive": {MAPPING, NULL},
    "required": {LIST, STRING, NULL},
    "preset": {STRING},
    "contract": {STRING},
    "description": {STRING},
}
TOP_KEY_KINDS = {"reporting_currency": {STRING}, "rates_file": {STRING, NULL}, "sources": {MAPPING}}


@dataclass(frozen=True)
class Problem:
    where: str  # the file or "environment"
    message: str
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        place = f"{self.where}:{self.line}" if self.line else self.where
        return f"{place}: " + (f"{self.key}: " if self.key else "") + self.message


def problem_at(path: Path, node, key: str, message: str) -> Problem:
    """A problem at the line of a yaml node."""
    return Problem(str(path), message, node.start_mark.line + 1, key)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config-dir",
        type=Path,
        metavar="DIR",
        help="the folder of sources.yml and presets.yml (default: $CUSTOMER_MARTS_CONFIG_DIR, "
        "else config/)",
    )


# -- YAML with line numbers ----------------------------------------------------------


def kind(node) -> str:
    """What a yaml node holds, in words ("a string", "a list", ...)."""
    return KINDS.get(node.tag.rsplit(":", 1)[-1], node.tag)


def compose(path: Path) -> tuple[Any, list[Problem]]:
    """The file's yaml node tree (None if empty or unreadable) and what stops reading it."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(str(path), "the file does not exist")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(str(path), f"cannot be read ({type(exc).__name__})")]
    try:
        return yaml.compose(text), []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        return None, [Problem(str(path), f"YAML syntax error: {what}", line)]
    except yaml.YAMLError as exc:
        return None, [Problem(str(path), f"YAML error: {exc}")]


def entries(node, path: Path, prefix: str, problems: list[Problem]) -> dict[str, tuple]:
    """A mapping node's entries: key -> (key node, value node); a key given twice is a
    problem (YAML keeps only the last)."""
    found: dict[str, tuple] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key in found:
            first = found[key][0].start_mark.line + 1
            message = f"given twice (also on line {first}); only the last one would count"
            problems.append(problem_at(path, key_node, prefix + key, message))
        found[key] = (key_node, value_node)
    return found


def check_keys(
    node, path: Path, prefix: str, kinds: dict[str, set[str]], problems: list[Problem]
) -> dict[str, tuple]:
    """Unknown keys and keys of the wrong kind in a mapping node, each at its line."""
    found = entries(node, path, prefix, problems)
    for key, (key_node, value_node) in found.items():
        if key not in kinds:
            known = ", ".join(sorted(kinds))
            problems.append(
                problem_at(path, key_node, prefix + key, f"unknown key (known: {known})")
            )
        elif kind(value_node) not in kinds[key]:
            expected = " or ".join(sorted(kinds[key]))
            message = f"must be {expected}, not {kind(value_node)}"
            problems.append(problem_at(path, key_node, prefix + key, message))
        elif kind(value_node) == LIST:
            for item in value_node.value:
                if kind(item) != STRING:
                    message = f"every item must be a string, not {kind(item)}"
                    problems.append(problem_at(path, item, prefix + key, message))
        elif kind(value_node) == MAPPING and key in ("columns", "derive"):
            for item_key, item_value in value_node.value:
                if kind(item_value) != STRING:
                    message = f"each entry must map to a string, not {kind(item_value)}"
                    where = f"{prefix}{key}.{item_key.value}"
                    problems.append(problem_at(path, item_key, where, message))
    return found


def check_sources_file(path: Path, problems: list[Problem]):
    """sources.yml's structure; its node tree (None if it cannot be read)."""
    from customer_marts.ingest.contract import SOURCES

    root, unreadable = compose(path)
    problems += unreadable
    if root is None:
        return None
    if kind(root) != MAPPING:
        problems.append(Problem(str(path), f"must be a mapping, not {kind(root)}", 1))
        return None
    found = check_keys(root, path, "", TOP_KEY_KINDS, problems)
    if "sources" in found and kind(found["sources"][1]) == MAPPING:
        source_kinds = {k: v for k, v in SOURCE_KEY_KINDS.items() if k != "contract"}
        source_kinds.pop("description")
        for name, (key_node, value_node) in entries(
            found["sources"][1], path, "sources.", problems
        ).items():
            if name not in SOURCES:
                message = f"unknown source (the landing contract has {', '.join(SOURCES)})"
                problems.append(problem_at(path, key_node, f"sources.{name}", message))
            elif kind(value_node) == MAPPING:
                check_keys(value_node, path, f"sources.{name}.", source_kinds, problems)
            elif kind(value_node) != NULL:
                message = f"must be a mapping, not {kind(value_node)}"
                problems.append(problem_at(path, key_node, f"sources.{name}", message))
    return root


def check_presets_file(path: Path, problems: list[Problem]):
    root, unreadable = compose(path)
    problems += unreadable
    if root is None or kind(root) == NULL:
        return root
    if kind(root) != MAPPING:
        problems.append(Problem(str(path), f"must be a mapping, not {kind(root)}", 1))
        return None
    preset_kinds = {k: v for k, v in SOURCE_KEY_KINDS.items() if k not in ("folder", "preset")}
    for name, (key_node, value_node) in entries(root, path, "", problems).items():
        if kind(value_node) != MAPPING:
            message = f"a preset must be a mapping, not {kind(value_node)}"
            problems.append(problem_at(path, key_node, name, message))
            continue
        check_keys(value_node, path, f"{name}.", preset_kinds, problems)
    return root


def line_of(root, keys: list[str]) -> int | None:
    """The line of the deepest of `keys` (a path into the mapping nodes) the tree has."""
    line, node = None, root
    for key in keys:
        if node is None or kind(node) != MAPPING:
            break
        match = next((pair for pair in node.value if str(pair[0].value) == key), None)
        if match is None:
            break
        line, node = match[0].start_mark.line + 1, match[1]
    return line


def pipeline_problem(error: Exception, sources_path: Path, presets_path: Path, trees) -> Problem:
    """The pipeline's own complaint (SourceConfigError: "<file>: sources.<name>: <key>
    ..." or "presets.<name>: ..."), placed at its file, line and key."""
    message = str(error)
    for path in (sources_path, presets_path):
        message = message.removeprefix(f"{path}: ")
    where, keys = sources_path, []
    if match := re.match(r"(sources|presets)\.(\w+): (.*)", message, re.S):
        group, name, message = match.groups()
        where, keys = (
            (sources_path, ["sources", name]) if group == "sources" else (presets_path, [name])
        )
    first = re.match(r"(\w+)\b", message)
    if first and first.group(1) in {*SOURCE_KEY_KINDS, *TOP_KEY_KINDS}:
        keys.append(first.group(1))
    tree = trees[where]
    return Problem(str(where), message, line_of(tree, keys), ".".join(keys) or None)


# -- the environment -----------------------------------------------------------------


def environment_problems(config) -> tuple[list[Problem], list[str]]:
    """What is wrong with the environment, and what it resolves to."""
    from customer_marts.config import Settings, config_dir, env_run_date
    from customer_marts.ingest.shaping import salt_problem

    problems, seen = [], []
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        variable = str(exc).split("=", 1)[0]
        return [Problem("environment", str(exc), key=variable)], seen
    try:
        env_run_date()
    except ValueError as exc:
        problems.append(Problem("environment", str(exc), key="RUN_DATE"))
    folders = {
        "CUSTOMER_MARTS_CONFIG_DIR": config_dir(),
        "LANDING_DIR": settings.landing_dir,
        "WAREHOUSE_DIR": settings.warehouse_dir,
        "DBT_PROJECT_DIR": settings.dbt_project_dir,
        "EXPECTATIONS_DIR": settings.expectations_dir,
    }
    for variable, folder in folders.items():
        seen.append(f"{variable}={folder}")
        if folder.exists() and not folder.is_dir():
            problems.append(Problem("environment", f"{folder} is not a folder", key=variable))
        elif not folder.exists():
            if variable == "WAREHOUSE_DIR":
                continue  # the first run creates it
            if variable == "LANDING_DIR" and settings.landing_is_default:
                seen[-1] += " (missing: `make run` writes the demo data there)"
                continue
            problems.append(Problem("environment", f"{folder} does not exist", key=variable))
    warehouse = settings.warehouse_dir
    existing = next((p for p in (warehouse, *warehouse.parents) if p.exists()), None)
    if existing is not None and existing.is_dir() and not os.access(existing, os.W_OK):
        problems.append(Problem("environment", f"{existing} is not writable", key="WAREHOUSE_DIR"))
    if (settings.dbt_project_dir).is_dir() and not (
        settings.dbt_project_dir / "dbt_project.yml"
    ).exists():
        problems.append(Problem("environment", "holds no dbt_project.yml", key="DBT_PROJECT_DIR"))
    if config is not None:
        by_email = [name for name, s in config.sources.items() if s.hashes_email]
        problem = salt_problem(settings.customer_key_salt) if by_email else None
        if problem:
            problems.append(
                Problem(
                    "environment",
                    f"{problem}, and source(s) {', '.join(by_email)} key customers by e-mail",
                    key="CUSTOMER_KEY_SALT",
                )
            )
    return problems, seen


def main(args: argparse.Namespace) -> int:
    from customer_marts.ingest import sources

    if args.config_dir is not None:
        os.environ["CUSTOMER_MARTS_CONFIG_DIR"] = str(args.config_dir.resolve())
    sources_path, presets_path = sources.sources_file(), sources.presets_file()
    problems: list[Problem] = []
    trees = {
        sources_path: check_sources_file(sources_path, problems),
        presets_path: check_presets_file(presets_path, problems),
    }
    config = None
    if not problems:
        try:
            config = sources.load(sources_path, presets_path=presets_path)
        except sources.SourceConfigError as exc:
            problems.append(pipeline_problem(exc, sources_path, presets_path, trees))
    environment, seen = environment_problems(config)
    problems += environment
    if config is not None:
        print(f"{sources_path}: ok ({', '.join(config.sources)})")
        print(f"{presets_path}: ok")
    for line in seen:
        print(f"environment: {line}")
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print("\nthe configuration and the environment are ok")
    return 0
