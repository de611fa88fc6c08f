"""The machine the benchmark runs on: its load, a wait for a quiet moment, what it is."""

from __future__ import annotations

import logging
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

QUIET_LOAD = 1.5  # 1-minute load average under which the machine counts as quiet
QUIET_WAIT = 10 * 60  # seconds to wait for a quiet machine before running anyway


def load_average() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(limit: float = QUIET_LOAD, wait: float = QUIET_WAIT, poll: float = 30.0):
    """Wait until the 1-minute load average is under `limit` (at most `wait` seconds).
    Returns (load average at the end of the wait, whether it was quiet, seconds waited)."""
    started = time.monotonic()
    while True:
        load = load_average()
        waited = time.monotonic() - started
        if load < limit:
            return load, True, waited
        if waited >= wait:
            log.warning("load average still %.2f after %.0f s: running anyway", load, waited)
            return load, False, waited
        log.info("load average %.2f >= %.2f: waiting for a quiet machine", load, limit)
        time.sleep(poll)


def machine_info() -> dict[str, Any]:
    import importlib.metadata as metadata

    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            cpu,
        )
    memory = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = re.search(r"MemTotal:\s+(\d+)", meminfo.read_text())
        memory = int(kib.group(1)) * 1024 if kib else 0
    versions = {}
    for package in ("duckdb", "dbt-core", "dbt-duckdb", "apache-airflow", "great_expectations"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_gib": round(memory / 1024**3, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        **versions,
    }
