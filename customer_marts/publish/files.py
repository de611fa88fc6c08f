"""Atomic file operations of publish: a file re-pointed by a hard link renamed over it,
a folder by a symbolic link renamed over it (`rename(2)` is atomic, so a reader sees
the old one or the new one, never a half-written one).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from customer_marts.warehouse import fsync

log = logging.getLogger(__name__)

PARQUET_DIR = "parquet"
DOCS_DIR = "docs"


def _swap_name(path: Path) -> Path:
    """A temporary name next to `path`, unique to this process."""
    return path.with_name(f".{path.name}.{os.getpid()}.swap")


def point_to(version: Path, published: Path) -> None:
    """Atomically make `published` the same file (inode) as `version`."""
    swap = _swap_name(published)
    swap.unlink(missing_ok=True)
    os.link(version, swap)
    os.replace(swap, published)
    fsync(published.parent)


def staged_dir(warehouse_dir: Path, kind: str, run_id: str) -> Path:
    """Where a run prepares its `parquet` or `docs` folder before it is swapped in."""
    return warehouse_dir / f".{kind}-{run_id}"


def swap_directory(staged: Path, link: Path) -> None:
    """Atomically re-point the symbolic link `link` to the complete folder `staged`.

    The link is relative (it survives moving or mounting the warehouse folder).
    The folder it pointed to before is kept, so a reader that resolved the old
    link a moment ago can still open its files; older folders are deleted.
    """
    previous = Path(os.readlink(link)).name if link.is_symlink() else None
    if link.exists() and not link.is_symlink():  # a real folder (made by hand): set it aside
        link.rename(link.with_name(f".{link.name}-replaced"))
    swap = _swap_name(link)
    swap.unlink(missing_ok=True)
    swap.symlink_to(staged.name)
    os.replace(swap, link)
    fsync(link.parent)
    for entry in link.parent.glob(f".{link.name}-*"):
        if entry.name not in (staged.name, previous):
            shutil.rmtree(entry, ignore_errors=True)


def is_target_of(folder: Path, link: Path) -> bool:
    return link.is_symlink() and Path(os.readlink(link)).name == folder.name


def remove_directory_link(link: Path) -> None:
    """Remove the `parquet` link and its folders (the export was switched off)."""
    if link.is_symlink():
        link.unlink()
        for entry in link.parent.glob(f".{link.name}-*"):
            shutil.rmtree(entry, ignore_errors=True)
        log.info("EXPORT_PARQUET is off: removed %s so no tool reads a stale export", link)
