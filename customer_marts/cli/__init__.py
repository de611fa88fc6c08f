"""`customer-marts` (also `python -m customer_marts`): the one command line of the project.

Each command is a module of this package with `configure(parser)`, which declares its
options, and `main(args)`, which does the work. Modules import what their work needs
inside `main`, so `--help` of any command parses its options and stops: it imports no
warehouse, Airflow or dbt code and touches no file.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command name -> (module in this package, one-line summary)
COMMANDS = {
    "run": ("run", "run the nightly DAG once (airflow dags test), verify it, publish"),
    "status": ("status", "the last runs and what is published, as of when"),
    "rollback": ("rollback", "list the kept published versions, or re-point published.duckdb"),
    "report": ("report", "render the run report of the published build again"),
    "docs": ("docs", "serve the dbt docs site and the run report on http://127.0.0.1:8000"),
    "validate-config": ("config_check", "check sources.yml, presets.yml and the environment"),
    "demo": ("demo_data", "write the demo exports into LANDING_DIR (or --out)"),
    "recover": ("recover", "rebuild a damaged build.duckdb from the archive of ingested files"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="customer-marts",
        description="Customer Marts: run the nightly pipeline, see and manage what it published.",
        epilog="`customer-marts COMMAND --help` explains a command. Settings come from the "
        "environment (docs/configuration.md); the options of a command override them.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, summary) in COMMANDS.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        sub = commands.add_parser(
            name,
            help=summary,
            description=(module.__doc__ or summary).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(sub)
        sub.set_defaults(handler=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
