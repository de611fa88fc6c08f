"""Options several commands share: the folders they work on, given on the command line
instead of the environment."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# option -> (environment variable, default folder, what it holds)
FOLDERS = {
    "--landing-dir": ("LANDING_DIR", "data/landing", "the folder of export files"),
    "--warehouse-dir": ("WAREHOUSE_DIR", "data/warehouse", "the warehouse folder"),
}


def add_folder(parser: argparse.ArgumentParser, option: str) -> None:
    variable, default, what = FOLDERS[option]
    parser.add_argument(
        option, type=Path, metavar="DIR", help=f"{what} (default: ${variable}, else {default})"
    )


def add_landing_dir(parser: argparse.ArgumentParser) -> None:
    add_folder(parser, "--landing-dir")


def add_warehouse_dir(parser: argparse.ArgumentParser) -> None:
    add_folder(parser, "--warehouse-dir")


def apply_folders(args: argparse.Namespace) -> None:
    """Put the folders given as options into the environment, where Settings.from_env and
    every child process (Airflow, dbt) read them."""
    for option, (variable, _, _) in FOLDERS.items():
        value = getattr(args, option.removeprefix("--").replace("-", "_"), None)
        if value is not None:
            os.environ[variable] = str(value.resolve())
