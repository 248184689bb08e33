"""What a dbt run shows while it runs: one line per node, or a progress bar on a terminal.

A `dbt build` of the project takes a minute and more; shown nothing, the operator of a
cut-over cannot tell a slow model from a hung one. So dbt's events (loaders.cutover.dbt
passes them here) drive the display:

- on a terminal: a rich progress bar on stderr (nodes done of the total, the nodes running,
  the time), with a line above it for every node that did not pass;
- elsewhere (CI, a log, a pipe): one plain line per node as it finishes,
  `[ 12/180] model marts__shadow.customers ... ok 1.2 s` (and `[hook] ...` per hook), and while a node runs longer than
  HEARTBEAT_SECONDS with nothing printed, a line naming what runs: never a long silence.

The display only shows: the results are read from dbt's result objects (dbt.py), never from
what is printed here.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

HEARTBEAT_SECONDS = 10.0  # the longest silence of the plain display while dbt runs
MESSAGE_CHARS = 160  # of a failing node's message, on its line

# run_result.status -> the word on a node's line (warn/fail get the failing rows' count)
WORDS = {
    "success": "ok",
    "pass": "pass",
    "warn": "warn",
    "fail": "FAIL",
    "error": "ERROR",
    "skipped": "skip",
    "no-op": "no-op",
    "partial success": "PARTIAL",
    "runtime error": "ERROR",
}
QUIET = {"success", "pass", "no-op"}  # statuses the bar does not print a line for


def node_label(node_info: Any) -> str:
    """`model marts__shadow.customers`, `test not_null_customers_id`, `seed reference.x`."""
    kind = node_info.resource_type or node_info.unique_id.split(".")[0]
    relation = node_info.node_relation
    if kind != "test" and relation is not None and relation.schema and relation.alias:
        return f"{kind} {relation.schema}.{relation.alias}"
    return f"{kind} {node_info.node_name or node_info.unique_id}"


def _ephemeral(node_info: Any) -> bool:
    return getattr(node_info, "materialized", "") == "ephemeral"


def outcome_text(run_result: Any) -> str:
    """`ok 1.2 s`, `FAIL 3 0.4 s`, `ERROR 0.1 s: relation ... does not exist`."""
    status = run_result.status or "?"
    word = WORDS.get(status, status)
    if status in ("warn", "fail") and run_result.num_failures:
        word = f"{word} {run_result.num_failures}"
    text = f"{word} {run_result.execution_time:.1f} s"
    if status not in QUIET and status != "skipped" and run_result.message:
        first = " ".join(run_result.message.split())
        text += f": {first[:MESSAGE_CHARS]}{'...' if len(first) > MESSAGE_CHARS else ''}"
    return text


class NodeProgress:
    """The display of one dbt command (a context manager); `on_event` takes dbt's events.

    Thread-safe: dbt fires its events from its worker threads. `interactive` None: a rich
    bar when `stream` is a terminal, plain lines otherwise."""

    def __init__(
        self,
        title: str,
        stream: TextIO | None = None,
        interactive: bool | None = None,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.title = title
        self.stream = stream if stream is not None else sys.stderr
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self.heartbeat = heartbeat
        self.total: int | None = None
        self.done = 0
        self.running: dict[str, tuple[str, float]] = {}  # unique_id -> (label, started)
        self.lines = 0  # node lines printed (plain display)
        self._lock = threading.RLock()
        self._started = time.monotonic()
        self._last_output = self._started
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._bar = None
        self._task = None

    # -- the context --------------------------------------------------------------------

    def __enter__(self) -> NodeProgress:
        self._started = self._last_output = time.monotonic()
        if self.interactive:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            console = Console(file=self.stream, highlight=False)
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[running]}", style="dim"),
                console=console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.title, total=None, running="parsing")
        else:
            self._ticker = threading.Thread(target=self._tick, name="dbt-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        if self._bar is not None:
            self._bar.stop()

    # -- dbt's events -------------------------------------------------------------------

    def on_event(self, msg: Any) -> None:
        name = msg.info.name
        if name in ("NodeStart", "NodeFinished") and _ephemeral(msg.data.node_info):
            return  # compiled into its readers: no node of the run (nor of its results)
        if name == "LogStartLine" and msg.data.total:
            with self._lock:
                if self.total is None:
                    self.total = msg.data.total
                    if self._bar is not None:
                        self._bar.update(self._task, total=self.total)
        elif name == "NodeStart":
            info = msg.data.node_info
            with self._lock:
                self.running[info.unique_id] = (node_label(info), time.monotonic())
                self._refresh()
        elif name == "NodeFinished":
            self._finished(msg.data.node_info, msg.data.run_result)
        elif name == "LogHookStartLine":
            with self._lock:
                self.running[f"hook {msg.data.statement}"] = (
                    f"hook {msg.data.statement}",
                    time.monotonic(),
                )
                self._refresh()
        elif name == "LogHookEndLine":
            self._hook_finished(msg.data)

    def _hook_finished(self, data: Any) -> None:
        """An on-run-start/-end hook (a result of the run, not one of its nodes)."""
        with self._lock:
            self.running.pop(f"hook {data.statement}", None)
            status = WORDS.get(data.status, data.status)
            line = f"[hook] {data.statement} ... {status} {data.execution_time:.1f} s"
            if self._bar is not None:
                if data.status != "success":
                    self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
                self._refresh()
            else:
                self._write(line)

    def _finished(self, info: Any, run_result: Any) -> None:
        with self._lock:
            self.running.pop(info.unique_id, None)
            self.done += 1
            line = f"{self._index()} {node_label(info)} ... {outcome_text(run_result)}"
            if self._bar is not None:
                if run_result.status not in QUIET:
                    self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
                self._bar.update(self._task, completed=self.done)
                self._refresh()
            else:
                self._write(line)
                self.lines += 1

    # -- output ---------------------------------------------------------------------------

    def _index(self) -> str:
        total = max(self.total or 0, self.done)
        width = len(str(total)) if total else 3
        return f"[{self.done:>{width}}/{total or '?'}]"

    def _refresh(self) -> None:
        if self._bar is None:
            return
        labels = [label for label, _ in self.running.values()]
        shown = ", ".join(labels[:2]) + (f" +{len(labels) - 2}" if len(labels) > 2 else "")
        self._bar.update(self._task, running=shown)

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
        self._last_output = time.monotonic()

    def _tick(self) -> None:
        """The plain display's heartbeat: a line when nothing was printed for a while."""
        while not self._stop.wait(min(1.0, self.heartbeat)):
            with self._lock:
                now = time.monotonic()
                if now - self._last_output < self.heartbeat:
                    continue
                if self.running:
                    names = ", ".join(
                        f"{label} ({now - started:.0f} s)"
                        for label, started in list(self.running.values())[:3]
                    )
                    more = len(self.running) - 3
                    self._write(
                        f"{self._index()} running: {names}{f' +{more}' if more > 0 else ''}"
                    )
                else:
                    what = "parsing and compiling" if not self.done else "between nodes"
                    self._write(f"{self.title}: {what} ({now - self._started:.0f} s)")
