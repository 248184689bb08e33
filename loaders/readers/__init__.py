"""Readers: find the files to load and turn each into Sources of text rows.

`discover(paths)` expands the command line into files, `check_input(path)` says why a file
cannot be opened, `open_file(path)` opens one by its extension. See `base.py` for what a
Source is, `cells.py` for how a cell becomes text and `header.py` for a sheet's header row.
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

__all__ = [
    "READERS",
    "SUPPORTED",
    "LockFile",
    "Source",
    "SourceError",
    "check_input",
    "discover",
    "open_file",
]


class LockFile(SourceError):
    """An Excel/Office owner file (`~$name.xlsx`), left while the workbook is open: `discover`
    skips it with a note, wherever it is."""


def check_input(path: Path) -> SourceError | None:
    """What stops `path` from being opened as a source, or None: the one place for the file
    checks (exists, not a directory, not a lock file, a supported type, a regular file)."""
    path = Path(path)
    if not path.exists():
        return SourceError(path, "no such file or directory")
    if path.is_dir():
        return SourceError(path, "is a directory", "give a file, or use discover() on it")
    if path.name.startswith("~$"):
        return LockFile(path, "an Excel lock file (the workbook was open)")
    if path.suffix.lower() not in READERS:
        return SourceError(
            path,
            f"not a supported file type ({path.suffix or 'no extension'})",
            f"give a workbook, a SQLite database or a CSV file: {SUPPORTED}",
        )
    if not path.is_file():
        return SourceError(path, "not a regular file")
    return None


def _unreadable(exc: OSError) -> None:
    """os.walk's onerror: a folder that cannot be listed stops the load (SourceError), since
    skipping it would load part of an export and call it done."""
    folder = Path(exc.filename) if exc.filename else Path(".")
    raise SourceError(
        folder,
        f"folder cannot be read ({exc.strerror or exc})",
        "give the user running luckygas read access to it, or move it out of the folder loaded",
    ) from exc


def _walk(folder: Path, notes: list[str]) -> list[Path]:
    """Supported files under `folder`, recursively, sorted; notes for what is skipped."""
    found = []
    for root, dirs, files in os.walk(folder, onerror=_unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            problem = check_input(path)
            if problem is None:
                found.append(path)
            else:
                notes.append(f"skipped {problem}")
    return found


def discover(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """The files to load under `paths`, and notes on what was skipped.

    A directory is walked recursively, hidden files and folders (`.*`) skipped silently,
    Excel lock files (`~$*`) and files of other types skipped with a note; a folder that
    cannot be listed (no permission) is a SourceError, never skipped. A file named
    explicitly must pass `check_input` (SourceError otherwise), except a lock file, which is
    skipped with a note; a hidden file named explicitly is loaded. The result is sorted by
    path (each file once), so the same files load in the same order however they were named.
    """
    files: dict[Path, Path] = {}  # resolved -> as found
    notes: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            candidates = _walk(path, notes)
        elif isinstance(problem := check_input(path), LockFile):
            notes.append(f"skipped {problem}")
            continue
        elif problem is not None:
            raise problem
        else:
            candidates = [path]
        for found in candidates:
            files.setdefault(found.resolve(), found)
    ordered = sorted(files.items(), key=lambda item: item[0].parts)
    return [found for _, found in ordered], notes


def open_file(path: Path) -> list[Source]:
    """The Sources of one file, by its extension (see READERS), once it passes `check_input`."""
    path = Path(path)
    problem = check_input(path)
    if problem is not None:
        raise problem
    return READERS[path.suffix.lower()](path)
