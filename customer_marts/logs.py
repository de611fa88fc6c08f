"""Logging set-up that keeps a run's output readable."""

from __future__ import annotations

import logging

# Libraries that log every step at INFO (Great Expectations floods the log once
# Airflow has configured the root logger at INFO).
NOISY_LOGGERS = ("great_expectations", "great_expectations.core", "tzlocal", "urllib3", "numexpr")


def quiet_noisy_loggers(level: int = logging.WARNING) -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(level)


def log_progress(logger: logging.Logger, what: str, done: int, total: int, parts: int = 20) -> None:
    """Log "<what>: <done> of <total> file(s)" about `parts` times over a loop of `total`
    files (and at its end): the live progress of `customer-marts run` reads these lines."""
    if total and (done == total or done % max(1, total // parts) == 0):
        logger.info("%s: %d of %d file(s)", what, done, total, stacklevel=2)
