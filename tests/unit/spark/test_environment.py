"""spark/environment.py: the Spark engine runs only with Java 17 or later, and says so."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spark.environment import java_version, missing


def fake_java(folder: Path, shown: str) -> None:
    """A `java` on PATH that prints `shown` as `java -version` does (on stderr)."""
    java = folder / "java"
    java.write_text(f"#!/bin/sh\necho '{shown}' >&2\n")
    java.chmod(0o755)


@pytest.mark.parametrize(
    ("shown", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_402"', 1),
        ('openjdk version "11.0.22" 2024-01-16', 11),
    ],
)
def test_the_major_version_is_read_from_java_version(tmp_path, monkeypatch, shown, major):
    fake_java(tmp_path, shown)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert java_version() == major


def test_java_older_than_17_is_named_as_the_reason(tmp_path, monkeypatch):
    fake_java(tmp_path, 'openjdk version "11.0.22" 2024-01-16')
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "Java 17" in missing()


def test_without_java_the_version_is_0(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert java_version() == 0
    assert "Java 17" in missing()


def test_the_benchmark_leaves_the_spark_figure_out_without_java(tmp_path, monkeypatch):
    from datetime import date

    from bench.spark import spark_build

    monkeypatch.setenv("PATH", str(tmp_path))
    assert spark_build(tmp_path / "build.duckdb", tmp_path / "spark", date(2025, 12, 31)) is None
    assert not (tmp_path / "spark").exists()  # nothing started
