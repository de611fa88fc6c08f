"""Live progress of `customer-marts run`, read from the run's log file as it grows.

The run is `airflow dags test` in a child process writing its log file; `follow` reads
the new lines of that file while the child runs and feeds them to `Progress`, which
shows one line per step of the DAG: when it starts, and when it ends with its outcome,
its elapsed time (from the log's own timestamps) and its headline figures. During a
step, on a terminal, the step's line is rewritten in place (`\\r`) with a running
clock and what the log says of its progress (files archived and read, dbt nodes
done); when stdout is not a terminal only the start and end lines are printed.

What is read from the log (nothing else of it is shown; the full log stays in its file):

    [DAG TEST] starting task_id=T / [DAG TEST] end task task_id=T   a step's bounds
    Task instance state updated ... new_state=S                     its outcome
    run R for as-of date D started                                  start_run
    archiving the landing files: N of M file(s), reading orders: …  ingest (progress)
    ingested N file(s) (S skipped): R rows read, L loaded, Q quarantined, D duplicate
    quality gate (raw): N checks passed, quality warning: …         validate_*
    dbt | … N of M OK|PASS|WARN|ERROR|FAIL|SKIP …                   dbt_build (progress)
    dbt build with --full-refresh (every model rebuilt): REASONS     dbt_build
    published published-R.duckdb (N tables)                         publish
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z?\s")
TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\w+)")
TASK_END = re.compile(r"\[DAG TEST\] end task task_id=(\w+)")
NEW_STATE = re.compile(r"Task instance state updated\b.*\bnew_state=(\w+)")
RUN_STARTED = re.compile(r"\brun (\S+) for as-of date (\S+) started")
FILE_PROGRESS = re.compile(r"\] ((?:archiving|reading) [\w ]+): (\d+) of (\d+) file\(s\)")
INGESTED = re.compile(
    r"\bingested (\d+) file\(s\) \((\d+) skipped\): (\d+) rows read, (\d+) loaded, "
    r"(\d+) quarantined, (\d+) duplicate"
)
GATE = re.compile(r"\bquality gate \((\w+)\): (\d+) checks passed")
QUALITY_WARNING = re.compile(r"\] quality warning: ")
DBT_NODE = re.compile(r"dbt \| \S+\s+(\d+) of (\d+) (OK|PASS|WARN|ERROR|FAIL|SKIP|NO-OP)\b(.*)")
DBT_DOCS = re.compile(r"\] dbt docs generate ")
# the reason ends at the logger's name in brackets before `loc=` (a reason may hold brackets)
FULL_REBUILD = re.compile(
    r"\] dbt build with --full-refresh \(every model rebuilt\): (.+?)\s+\[[\w.]+\](?:\s+loc=|\s*$)"
)
PUBLISHED = re.compile(r"\] published (\S+) \((\d+) tables\)")


@dataclass
class Step:
    """One task of the DAG run as the log tells it."""

    name: str
    started: datetime
    ended: datetime | None = None
    state: str | None = None  # Airflow's last word: success, failed, up_for_retry, ...
    progress: str = ""  # during the step: "87/262 nodes", "reading orders 40 of 700 files"
    figures: dict[str, int | str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state == "success"

    def headline(self) -> str:
        """The step's figures in words (empty while there are none)."""
        f = self.figures
        if self.name == "start_run" and "run_id" in f:
            return f"run {f['run_id']}, as of {f['as_of']}"
        if self.name == "ingest" and "files" in f:
            words = [
                f"{f['files']:,} file(s)",
                f"{f['rows_loaded']:,} rows ingested",
                f"{f['rows_quarantined']:,} quarantined",
            ]
            if f["files_skipped"]:
                words.insert(1, f"{f['files_skipped']:,} skipped")
            if f["rows_duplicate"]:
                words.append(f"{f['rows_duplicate']:,} duplicate")
            return ", ".join(words)
        if self.name.startswith("validate_") and "checks_passed" in f:
            warnings = f.get("warnings", 0)
            return f"{f['checks_passed']:,} checks passed" + (
                f", {warnings} warning(s)" if warnings else ""
            )
        if self.name == "dbt_build" and "nodes" in f:
            words = [
                f"{f.get('models', 0)} models built",
                f"{f.get('tests', 0)} tests passed",
            ]
            for key, word in (("warnings", "warned"), ("errors", "failed"), ("skipped", "skipped")):
                if f.get(key):
                    words.append(f"{f[key]} {word}")
            rebuilt = f"; full rebuild: {f['full_rebuild']}" if f.get("full_rebuild") else ""
            return f"{f['done']}/{f['nodes']} nodes: " + ", ".join(words) + rebuilt
        if self.name == "publish" and "tables" in f:
            return f"{f['tables']} tables published ({f['version']})"
        return ""


def timestamp(line: str) -> datetime | None:
    """The time a log line was written (Airflow's lines start with it, in UTC)."""
    match = TIMESTAMP.match(line)
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC) if match else None


def elapsed(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s"


class Progress:
    """Turns the run's log lines into one line per step on `out`."""

    def __init__(self, out: TextIO = sys.stdout, live: bool | None = None) -> None:
        self.out = out
        self.live = out.isatty() if live is None else live
        self.steps: list[Step] = []
        self.current: Step | None = None
        self._last_time: datetime | None = None
        self._drawn = False  # a live line is on the screen, not yet ended by "\n"
        self._shown = ""  # the text of that line

    # -- reading --------------------------------------------------------------------

    def feed(self, line: str) -> None:
        """Read one line of the log."""
        when = timestamp(line)
        if when:
            self._last_time = when
        if match := TASK_START.search(line):
            self._start(match.group(1), when or self._now())
            return
        step = self.current
        if step is None:
            return
        if match := TASK_END.search(line):
            if match.group(1) == step.name:
                step.ended = when or self._now()
                self._end(step)
            return
        if match := NEW_STATE.search(line):
            step.state = match.group(1)
        elif match := RUN_STARTED.search(line):
            step.figures.update(run_id=match.group(1), as_of=match.group(2))
        elif match := FILE_PROGRESS.search(line):
            what, done, total = match.groups()
            step.progress = f"{what} {done}/{total} files"
            self._redraw()
        elif match := INGESTED.search(line):
            names = ("files", "files_skipped", "rows_read", "rows_loaded")
            names += ("rows_quarantined", "rows_duplicate")
            step.figures.update(zip(names, map(int, match.groups()), strict=True))
        elif match := GATE.search(line):
            step.figures["checks_passed"] = int(match.group(2))
        elif QUALITY_WARNING.search(line):
            step.figures["warnings"] = int(step.figures.get("warnings", 0)) + 1
        elif match := DBT_NODE.search(line):
            self._dbt_node(step, int(match.group(2)), match.group(3), match.group(4))
        elif match := FULL_REBUILD.search(line):
            step.figures["full_rebuild"] = match.group(1)
        elif DBT_DOCS.search(line):
            step.progress = "generating the dbt docs site"
            self._redraw()
        elif match := PUBLISHED.search(line):
            step.figures.update(version=match.group(1), tables=int(match.group(2)))

    def _dbt_node(self, step: Step, total: int, status: str, rest: str) -> None:
        f = step.figures
        f["nodes"] = total
        f["done"] = int(f.get("done", 0)) + 1
        if status == "OK" and " created " in f" {rest} ":
            f["models"] = int(f.get("models", 0)) + 1
        key = {"PASS": "tests", "WARN": "warnings", "ERROR": "errors", "FAIL": "errors"}.get(
            status, "skipped" if status == "SKIP" else None
        )
        if key:
            f[key] = int(f.get(key, 0)) + 1
        step.progress = f"dbt {f['done']}/{total} nodes"
        self._redraw()

    # -- showing --------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.now(UTC)

    def _start(self, name: str, when: datetime) -> None:
        if self.current is not None and self.current.ended is None:
            self._end(self.current)  # its end line never came: show what is known
        self.current = Step(name, when)
        self.steps.append(self.current)
        if self.live:
            self._redraw()
        else:
            self._write(f"  {name:<15} started\n")

    def _end(self, step: Step) -> None:
        self._write(f"{self.line(step)}\n")
        self._drawn = False
        self.current = None

    def tick(self) -> None:
        """Update the running step's clock (on a terminal); called while waiting."""
        self._redraw(self._now())

    def _redraw(self, now: datetime | None = None) -> None:
        if self.live and self.current is not None:
            text = self.line(self.current, now or self._last_time)
            if not self._drawn or text != self._shown:  # nothing changed: nothing written
                self._write(text)
                self._drawn, self._shown = True, text

    def _write(self, text: str) -> None:
        if self._drawn:
            text = "\r\033[K" + text
        self.out.write(text)
        self.out.flush()

    @staticmethod
    def line(step: Step, now: datetime | None = None) -> str:
        """A step's line: while it runs (`now` given) its clock and progress, once it has
        ended its outcome, elapsed time and figures."""
        if step.ended is None:
            seconds = int(max(0.0, ((now or step.started) - step.started).total_seconds()))
            clock = elapsed(seconds) if seconds >= 60 else f"{seconds}s"
            return f"  {step.name:<15} {'running':<8} {clock:>7}  {step.progress}".rstrip()
        outcome = "ok" if step.ok else (step.state or "ended").upper()
        seconds = (step.ended - step.started).total_seconds()
        return f"  {step.name:<15} {outcome:<8} {elapsed(seconds):>7}  {step.headline()}".rstrip()

    def close(self) -> None:
        """The log has ended: end a step left open (the run stopped inside it)."""
        if self.current is not None:
            self.current.ended = self._last_time or self._now()
            self.current.state = self.current.state or "stopped"
            self._end(self.current)


def follow(log_path: Path, child: subprocess.Popen, progress: Progress, interval: float = 0.2):
    """Feed `progress` the lines `child` writes to `log_path` until it exits; return its
    exit code."""
    pending = ""
    with log_path.open(encoding="utf-8", errors="replace") as log:
        while True:
            exited = child.poll() is not None
            chunk = log.read()  # after poll: once it has exited, this reads to the end
            if chunk:
                *lines, pending = (pending + chunk).split("\n")
                for line in lines:
                    progress.feed(line)
            if exited:
                break
            if not chunk:
                progress.tick()
                time.sleep(interval)
    if pending:
        progress.feed(pending)
    progress.close()
    return child.returncode
