"""Checkpoint 2: every input file found, hashed (SHA-256) and opened before anything is
written (`raw.plan`, which applies the readers' file checks); a problem is a no-go."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loaders import raw
from loaders.readers.base import SourceError


@dataclass(frozen=True)
class Inputs:
    """The files to load, or why they cannot be."""

    planned: raw.Plan | None  # what raw.load loads; None on a no-go
    files: list[dict]  # [{path, sha256, bytes}]: validation.migrations.files
    nogo: str = ""  # the no-go reason, or ''


def inspect_inputs(paths: Sequence[Path]) -> Inputs:
    """The files under `paths`, found, hashed and opened; or the no-go reason."""
    try:
        planned = raw.plan(paths)
    except SourceError as exc:
        return Inputs(None, [], str(exc))
    files = [
        {"path": str(f.path.resolve()), "sha256": f.sha256, "bytes": f.size} for f in planned.files
    ]
    if not files:
        return Inputs(None, [], f"no loadable file under {', '.join(map(str, paths))}")
    return Inputs(planned, files)
