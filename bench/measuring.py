"""Timing and memory sampling for the benchmark."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

MEDIAN_BELOW = 10.0  # seconds: a figure under this is the median of REPEATS runs
REPEATS = 5
SAMPLE_EVERY = 0.2  # seconds between two samples of the process tree's memory
MIB = 1024 * 1024


def timed(function: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, Any, list[float]]:
    """(seconds, last result, all timings): the median of `repeats` runs when the
    first run takes under MEDIAN_BELOW seconds, else that single run."""
    timings, result = [], None
    for attempt in range(repeats):
        started = time.perf_counter()
        result = function()
        timings.append(time.perf_counter() - started)
        if attempt == 0 and timings[0] >= MEDIAN_BELOW:
            break
    return statistics.median(timings), result, timings


class MemorySampler:
    """Peak resident memory of a process and all its descendants, sampled every
    SAMPLE_EVERY seconds with psutil: the peak of the summed RSS of the tree (shared
    pages count once per process, so this errs high) and of the largest process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_total = 0
        self.peak_process = 0
        self.samples: list[tuple[float, int]] = []  # (epoch seconds, summed RSS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_between(self, start: float, end: float) -> int:
        """The highest summed RSS sampled between two epoch times (0 if none)."""
        return max((total for at, total in self.samples if start <= at <= end), default=0)

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            sizes = []
            for process in tree:
                try:
                    sizes.append(process.memory_info().rss)
                except psutil.Error:
                    pass
            if sizes:
                self.peak_total = max(self.peak_total, sum(sizes))
                self.peak_process = max(self.peak_process, max(sizes))
                self.samples.append((time.time(), sum(sizes)))
            self._stop.wait(SAMPLE_EVERY)
