"""The live progress of `customer-marts run` on a real run's log.

fixtures/run.log.gz is the log of a real `customer-marts run` (`airflow dags test` of the
small demo: 400 customers, as of 2025-12-31), cut after Airflow marked the run
successful. The expected figures are read from other lines of that log than the ones
the progress counts (dbt's "Found 28 models, 223 data tests, ... 10 unit tests" and
"TOTAL=262"), and the elapsed times are worked out by hand from the timestamps of
each task's "[DAG TEST] starting" and "end task" lines.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from pathlib import Path

from customer_marts.cli.progress import Progress, follow

LOG = Path(__file__).parent / "fixtures" / "run.log.gz"
STEPS = ["start_run", "ingest", "validate_raw", "dbt_build", "validate_marts", "publish"]


def log_lines() -> list[str]:
    return gzip.decompress(LOG.read_bytes()).decode().splitlines()


def shown(lines: list[str], live: bool) -> str:
    out = io.StringIO()
    progress = Progress(out, live=live)
    for line in lines:
        progress.feed(line)
    progress.close()
    return out.getvalue()


# One line per step as it ends:
#   start_run       19:18:01.822476 -> 19:18:08.384121   6.56 s
#   ingest          19:18:08.394396 -> 19:18:14.617559   6.22 s
#   validate_raw    19:18:14.623568 -> 19:18:22.311921   7.69 s
#   dbt_build       19:18:22.327079 -> 19:19:33.500467  71.17 s = 1 min 11 s
#   validate_marts  19:19:33.512699 -> 19:19:50.077658  16.56 s
#   publish         19:19:50.086695 -> 19:19:51.872486   1.79 s
# dbt: 28 models, 223 data tests + 10 unit tests = 233 tests, TOTAL=262 nodes.
ENDED = [
    "  start_run       ok          6.6s  run 20261201T191808227482Z, as of 2025-12-31",
    "  ingest          ok          6.2s  1,282 file(s), 3,331 rows ingested, 0 quarantined",
    "  validate_raw    ok          7.7s  16 checks passed",
    "  dbt_build       ok         1m11s  262/262 nodes: 28 models built, 233 tests passed",
    "  validate_marts  ok         16.6s  116 checks passed, 1 warning(s)",
    "  publish         ok          1.8s  19 tables published "
    "(published-20261201T191808227482Z.duckdb)",
]


def test_plain_output_is_one_line_at_each_step_start_and_end():
    output = shown(log_lines(), live=False)
    assert "\r" not in output
    expected = []
    for step, ended in zip(STEPS, ENDED, strict=True):
        expected += [f"  {step:<15} started", ended]
    assert output.splitlines() == expected


def test_on_a_terminal_the_running_line_shows_progress_then_its_outcome():
    output = shown(log_lines(), live=True)
    # the screen: each "\r\033[K" rewrites the current line; "\n" ends a step's line
    screen = [segment.split("\r\033[K")[-1] for segment in output.split("\n")]
    assert screen == [*ENDED, ""]
    redraws = output.split("\r\033[K")
    # ingest: the archive's and the reader's file counts (the demo's 1283 files with
    # its marker; 647 orders files); dbt: its node count
    assert any("archiving the landing files 64/1283 files" in text for text in redraws)
    assert any("reading orders 647/647 files" in text for text in redraws)
    assert any(text.endswith("dbt 87/262 nodes") for text in redraws)
    assert all(" running " in text for text in redraws if "/" in text and "nodes" in text)


def test_a_full_rebuild_says_why_on_the_dbt_build_line():
    """The log line the dbt_build step writes when it rebuilds every model (as
    customer_marts.runs.pipeline.decide_refresh logs it, in Airflow's format)."""
    lines = []
    for line in log_lines():
        lines.append(line)
        if "starting task_id=dbt_build" in line:
            lines.append(
                "2026-12-01T19:18:22.500000Z [info     ] dbt build with --full-refresh "
                "(every model rebuilt): the dbt vars changed (churn_window_days: 180 -> 150, "
                "ids: [1, 2] -> [1]) "
                "[customer_marts.runs.pipeline] loc=pipeline.py:300"
            )
    dbt_line = shown(lines, live=False).splitlines()[2 * STEPS.index("dbt_build") + 1]
    assert dbt_line == (
        f"{ENDED[STEPS.index('dbt_build')]}; full rebuild: "
        "the dbt vars changed (churn_window_days: 180 -> 150, ids: [1, 2] -> [1])"
    )


def test_a_failed_step_is_shown_as_failed_and_the_run_stops_there():
    """The same log as if dbt_build had failed: Airflow records `failed` and runs
    nothing after it."""
    lines = []
    for line in log_lines():
        if "starting task_id=validate_marts" in line:
            break
        lines.append(line.replace("new_state=success", "new_state=failed"))
    output = shown(lines, live=False)
    assert output.splitlines()[-1].startswith("  dbt_build       FAILED     1m11s")


def test_a_log_that_ends_inside_a_step_shows_it_stopped():
    lines = log_lines()
    # the log ends after the ingest's summary, before Airflow recorded the task's state
    cut = next(n for n, line in enumerate(lines) if "] ingested 1282 file(s)" in line) + 1
    output = shown(lines[:cut], live=False)
    # ingest started at 19:18:08.394396; the last line kept is at 19:18:14.446618: 6.05 s
    assert output.splitlines()[-1] == (
        "  ingest          STOPPED     6.1s  1,282 file(s), 3,331 rows ingested, 0 quarantined"
    )


def test_follow_reads_a_growing_log_until_the_process_exits(tmp_path):
    """A real child process writes the log's lines with pauses, as Airflow does."""
    log = tmp_path / "run.log"
    text = "\n".join(log_lines()[:140])  # start_run, ingest, part of validate_raw
    writer = (
        "import sys, time\n"
        "lines = sys.stdin.read().split('\\n')\n"
        "with open(sys.argv[1], 'a') as log:\n"
        "    for n, line in enumerate(lines):\n"
        "        log.write(line + ('\\n' if n < len(lines) - 1 else ''))\n"
        "        log.flush()\n"
        "        if n % 40 == 0: time.sleep(0.1)\n"
        "sys.exit(3)\n"
    )
    log.touch()
    child = subprocess.Popen(
        [sys.executable, "-c", writer, str(log)], stdin=subprocess.PIPE, text=True
    )
    child.stdin.write(text)
    child.stdin.close()
    out = io.StringIO()
    assert follow(log, child, Progress(out, live=False), interval=0.05) == 3
    assert out.getvalue().splitlines() == [
        "  start_run       started",
        ENDED[0],
        "  ingest          started",
        ENDED[1],
        "  validate_raw    started",
        "  validate_raw    STOPPED     7.6s  16 checks passed",
    ]


def test_the_ingest_logs_its_file_count_about_twenty_times(caplog):
    import logging

    from customer_marts.logs import log_progress

    logger = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"):
        for number in range(1, 1284):
            log_progress(logger, "archiving the landing files", number, 1283)
    # every 1283 // 20 = 64 files (64, 128, ..., 1280: 20 lines) and the last one
    counts = [record.getMessage() for record in caplog.records]
    assert len(counts) == 21
    assert counts[0] == "archiving the landing files: 64 of 1283 file(s)"
    assert counts[-1] == "archiving the landing files: 1283 of 1283 file(s)"
    # the real run's log (the demo's 1283 files) has the same lines
    archived = [line for line in log_lines() if "] archiving the landing files: " in line]
    assert len(archived) == 21
