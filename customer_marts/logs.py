"""Logging set-up that keeps a run's output readable."""

from __future__ import annotations

import logging

# Libraries that log every step at INFO (Great Expectations floods the log once
# Airflow has configured the root logger at INFO).
NOISY_LOGGERS = ("great_expectations", "great_expectations.core", "tzlocal", "urllib3", "numexpr")


def quiet_noisy_loggers(level: int = logging.WARNING) -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(level)
