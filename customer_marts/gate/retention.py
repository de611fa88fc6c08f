"""How much history the quality gate keeps: the validation results of the newest
`KEEP_QUALITY_RUNS` runs of each suite, and their Data Docs pages.

Great Expectations stores one result per suite and run
(`$WAREHOUSE_DIR/gx/uncommitted/validations/<suite>/<run name>/<run time>/<batch>.json`)
and renders one page for it (`$WAREHOUSE_DIR/quality/validations/...`, the same path
ending in `.html`); it never deletes either, and Data Docs' index reads every stored
result each time it is built. A year of nightly runs would be some 7,000 results and
pages. Before a gate validates, `prune` keeps each suite's newest `keep - 1` runs, so
the gate leaves the newest `keep`, its own among them; GE's index builder then drops
the links to the deleted pages.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

RESULTS_DIR = Path("gx", "uncommitted", "validations")
PAGES_DIR = Path("quality", "validations")


def stored_runs(root: Path, suffix: str) -> dict[Path, list[Path]]:
    """Each suite's run folders (`<suite>/<run name>/<run time>`) under `root`, oldest
    first. GE names run-time folders `YYYYMMDDTHHMMSS.ffffffZ`, which sort as times."""
    runs: dict[Path, set[Path]] = {}
    for result in root.rglob(f"*{suffix}"):
        run_time = result.parent
        suite = run_time.parent.parent
        runs.setdefault(suite, set()).add(run_time)
    return {suite: sorted(folders, key=lambda f: f.name) for suite, folders in runs.items()}


def prune(warehouse_dir: Path, keep: int) -> int:
    """Delete each suite's stored results and Data Docs pages beyond its newest `keep`
    runs (0 deletes them all); return how many runs were deleted."""
    keep = max(0, keep)
    deleted = 0
    for root, suffix in ((RESULTS_DIR, ".json"), (PAGES_DIR, ".html")):
        for folders in stored_runs(warehouse_dir / root, suffix).values():
            for run_time in folders[: len(folders) - keep]:
                shutil.rmtree(run_time)
                if root == RESULTS_DIR:
                    deleted += 1
                run_name = run_time.parent
                if not any(run_name.iterdir()):
                    run_name.rmdir()
    if deleted:
        log.info("quality history: deleted %d validation result(s) beyond the newest", deleted)
    return deleted
