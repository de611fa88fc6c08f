"""Shared fixtures of the end-to-end tests: expensive runs done once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def baseline_2024(small_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The warehouse of one real run (a child process, as test_publish_safety runs them)
    on the small demo with its 2025 files held back, as of 2024-12-31. Read only: the
    publish-safety and fault tests each start from a `Site.start_from` copy of it."""
    from tests.e2e.test_publish_safety import BASELINE_AS_OF, Site

    site = Site(tmp_path_factory.mktemp("baseline_2024"), small_demo)
    site.run("all", BASELINE_AS_OF)
    return site.warehouse
