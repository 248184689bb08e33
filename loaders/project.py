"""Where the project is: its dbt project and its home (the embedded server, the backups).

The project is found from the project, not from the working directory, so a command run in
`data/` or `models/` uses the same server and the same dbt project as one run at the top:

- the dbt project: `$LUCKYGAS_PROJECT_DIR` if set; else the nearest folder, from the working
  directory up, holding the `dbt_project.yml` of project `luckygas`; else the source checkout
  this package was installed from (an editable install), when it holds one. Nothing found is
  one clear error naming what was looked for.
- the home: `$LUCKYGAS_HOME` if set; else `.luckygas` in the dbt project's folder.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from loaders.errors import UserError

PROJECT_NAME = "luckygas"
PROJECT_VARIABLE = "LUCKYGAS_PROJECT_DIR"
HOME_VARIABLE = "LUCKYGAS_HOME"
CHECKOUT = Path(__file__).resolve().parents[1]  # the repository, for an editable install


def is_project(folder: Path) -> bool:
    """True if `folder` holds the dbt_project.yml of project `luckygas`."""
    try:
        text = (folder / "dbt_project.yml").read_text(encoding="utf-8")
    except OSError:
        return False
    return _project_name(text) == PROJECT_NAME


def dbt_project_dir(start: Path | None = None) -> Path:
    """The dbt project's folder (see the module docstring); UserError if there is none."""
    configured = os.environ.get(PROJECT_VARIABLE, "").strip()
    if configured:
        folder = Path(configured).expanduser().resolve()
        if not is_project(folder):
            raise UserError(
                f"{PROJECT_VARIABLE}={configured} holds no dbt_project.yml of project"
                f" {PROJECT_NAME!r}; point it at the project's folder or unset it"
            )
        return folder
    return _found(Path(start or Path.cwd()).resolve())


def home() -> Path:
    """The project home: `$LUCKYGAS_HOME`, else `<dbt project>/.luckygas` (absolute)."""
    configured = os.environ.get(HOME_VARIABLE, "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    return dbt_project_dir() / ".luckygas"


@cache
def _found(start: Path) -> Path:
    for folder in (start, *start.parents):
        if is_project(folder):
            return folder
    if is_project(CHECKOUT):
        return CHECKOUT
    raise UserError(
        f"no luckygas project here: no dbt_project.yml of project {PROJECT_NAME!r} in {start}"
        f" or any folder above it; run the command inside the project, or set"
        f" {PROJECT_VARIABLE} (the project's folder) or {HOME_VARIABLE} (its .luckygas)"
    )


def _project_name(text: str) -> str | None:
    """The `name:` of a dbt_project.yml, without a YAML parser (it is the first key)."""
    for line in text.splitlines():
        if line.startswith("name:"):
            return line.partition(":")[2].split("#")[0].strip().strip("'\"") or None
    return None
