"""What a build is made from, as fingerprints: the dbt project's code, the dbt vars in
force and the sources configuration. Equal fingerprints mean the models compute the
same rows from the same raw rows; the build state (customer_marts/runs/build_state.py)
keeps the last successful build's, and a build whose inputs differ rebuilds every model
(customer_marts/transform/refresh.py). The dbt docs site's fingerprint (docs_site.py)
starts from the project's files too."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import yaml

from customer_marts.config import Settings

# Folders of the dbt project that are dbt's output, not the project.
NOT_PROJECT = {"target", "logs"}
# Files dbt writes into the project folder that are not the project (the anonymous user id).
NOT_PROJECT_FILES = {".user.yml"}
# The var given on the command line that is the run's date, not a setting of the models.
AS_OF_VAR = "as_of_date"


def project_files(project_dir: Path) -> Iterator[tuple[str, Path]]:
    """(path relative to the project, path) of every file of the dbt project, in order:
    models, macros, tests, seeds, .yml and .md files, dbt_project.yml, profiles.yml."""
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir)
        if (
            path.is_file()
            and relative.parts[0] not in NOT_PROJECT
            and relative.name not in NOT_PROJECT_FILES
        ):
            yield relative.as_posix(), path


def hash_files(digest, files: Iterator[tuple[str, Path]]) -> None:
    """Add each (name, path) of `files` to `digest`: its name and its bytes."""
    for name, path in files:
        digest.update(f"{name}\0".encode() + path.read_bytes() + b"\0")


def python_model_code() -> Iterator[tuple[str, Path]]:
    """The package code the dbt Python models import (customer_marts/clv): the CLV
    models' results change with it as with the models' own files."""
    from customer_marts import clv

    root = Path(clv.__file__).parent
    for path in sorted(root.glob("*.py")):
        yield f"customer_marts/clv/{path.name}", path


def project_fingerprint(settings: Settings) -> str:
    """The dbt project's code: its files, the Python code its Python models import, and
    the dbt and dbt-duckdb versions."""
    digest = hashlib.sha256()
    hash_files(digest, project_files(settings.dbt_project_dir))
    hash_files(digest, python_model_code())
    digest.update(json.dumps([version("dbt-core"), version("dbt-duckdb")]).encode())
    return digest.hexdigest()


def dbt_vars(settings: Settings, extra_vars: dict | None = None) -> dict:
    """The dbt vars in force: dbt_project.yml's, with the vars given on top (`--vars`),
    but the as-of date (the build state keeps it apart)."""
    project = yaml.safe_load((settings.dbt_project_dir / "dbt_project.yml").read_text()) or {}
    merged = {**(project.get("vars") or {}), **(extra_vars or {})}
    merged.pop(AS_OF_VAR, None)
    return json.loads(json.dumps(merged, default=str))  # as the build state records it


def sources_fingerprint() -> str:
    """The sources configuration as ingestion reads it: sources.yml and presets.yml of the
    configuration folder resolved onto the landing contract (a comment or the order of
    keys in the files does not change it)."""
    from customer_marts.ingest.sources import load

    resolved = json.dumps(asdict(load()), default=repr, sort_keys=True)
    return hashlib.sha256(resolved.encode()).hexdigest()


@dataclass(frozen=True)
class BuildInputs:
    """What a build is made from (its as-of date apart)."""

    project: str  # project_fingerprint
    sources: str  # sources_fingerprint
    dbt_vars: dict  # dbt_vars

    @classmethod
    def of(cls, settings: Settings, extra_vars: dict | None = None) -> BuildInputs:
        return cls(
            project_fingerprint(settings), sources_fingerprint(), dbt_vars(settings, extra_vars)
        )
