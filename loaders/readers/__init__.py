"""Readers: find the files to load and turn each into Sources of text rows.

`discover(paths)` expands the command line into files, `open_file(path)` opens one by its
extension. See `base.py` for what a Source is and `cells.py` for how a cell becomes text.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from loaders.readers.base import Source, SourceError
from loaders.readers.csvfile import open_csv
from loaders.readers.sqlite import open_database
from loaders.readers.xlsx import open_workbook, open_xls

READERS: dict[str, Callable[[Path], list[Source]]] = {
    ".xlsx": open_workbook,
    ".xlsm": open_workbook,
    ".xls": open_xls,
    ".db": open_database,
    ".sqlite": open_database,
    ".sqlite3": open_database,
    ".csv": open_csv,
    ".tsv": open_csv,
}
SUPPORTED = ", ".join(READERS)

__all__ = ["READERS", "SUPPORTED", "Source", "SourceError", "discover", "open_file"]


def _is_lock_file(path: Path) -> bool:
    """An Excel/Office owner file (`~$name.xlsx`), left while the workbook is open."""
    return path.name.startswith("~$")


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _walk(folder: Path, notes: list[str]) -> list[Path]:
    """Supported files under `folder`, recursively, sorted; notes for what is skipped."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if _is_hidden(path):
                continue
            if _is_lock_file(path):
                notes.append(f"skipped {path}: an Excel lock file (the workbook was open)")
            elif path.suffix.lower() not in READERS:
                notes.append(f"skipped {path}: not a supported type ({SUPPORTED})")
            elif not path.is_file():
                notes.append(f"skipped {path}: not a regular file")
            else:
                found.append(path)
    return found


def discover(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """The files to load under `paths`, and notes on what was skipped.

    A directory is walked recursively, hidden files and folders (`.*`) skipped silently,
    Excel lock files (`~$*`) and files of other types skipped with a note. A file named
    explicitly must exist and be of a supported type (SourceError otherwise), except a lock
    file, which is skipped with a note; a hidden file named explicitly is loaded. The result is sorted by path (each file once), so the
    same files load in the same order however they were named.
    """
    files: dict[Path, Path] = {}  # resolved -> as found
    notes: list[str] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise SourceError(path, "no such file or directory")
        if path.is_dir():
            candidates = _walk(path, notes)
        elif _is_lock_file(path):
            notes.append(f"skipped {path}: an Excel lock file (the workbook was open)")
            continue
        elif path.suffix.lower() not in READERS:
            raise SourceError(
                path,
                f"not a supported file type ({path.suffix or 'no extension'})",
                f"give a workbook, a SQLite database or a CSV file: {SUPPORTED}",
            )
        elif not path.is_file():
            raise SourceError(path, "not a regular file")
        else:
            candidates = [path]
        for found in candidates:
            files.setdefault(found.resolve(), found)
    ordered = sorted(files.items(), key=lambda item: item[0].parts)
    return [found for _, found in ordered], notes


def open_file(path: Path) -> list[Source]:
    """The Sources of one file, by its extension (see READERS)."""
    path = Path(path)
    if not path.exists():
        raise SourceError(path, "no such file or directory")
    if path.is_dir():
        raise SourceError(path, "is a directory", "give a file, or use discover() on it")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise SourceError(
            path,
            f"not a supported file type ({path.suffix or 'no extension'})",
            f"give a workbook, a SQLite database or a CSV file: {SUPPORTED}",
        )
    return reader(path)
