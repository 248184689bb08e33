"""The programs the cut-over runs (pg_dump, pg_restore, psql) as children that cannot
outlive it, the names of its database sessions, and a SIGTERM that unwinds it like Ctrl-C.

A child left running by a killed `luckygas migrate` keeps writing: a psql that commits half
a restore when its input ends, a pg_dump holding its snapshot. So each child runs in its own
process group (Ctrl-C at the terminal reaches only the parent, which decides), with
PR_SET_PDEATHSIG = SIGKILL (Linux): the kernel kills it when the parent dies, even of a
SIGKILL; and on every other way out of the parent (an exception, Ctrl-C, SIGTERM) `stop`
kills its whole group and waits for it. The children also get umask 077: what they write
(pg_dump's backup) is readable by the user alone. dbt is no child: it runs in the process
(loaders.cutover.dbt), so it dies with it, and it runs under the same umask.

A killed process's database sessions may keep running their statement a while, dbt's as a
child's: they are named (application_name) `session_name(...)`, so that the next migrate or
rollback, holding the lock, can end them (`loaders.cutover.recovery`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence

PR_SET_PDEATHSIG = 1
CHILD_UMASK = 0o077
SESSION_PREFIX = "luckygas-"  # luckygas-migrate-17-dbt; the lock's own session: "luckygas migrate"
GRACE_SECONDS = 5.0  # SIGTERM to SIGKILL, when the parent stops a child itself


def session_name(command: str, record_id: int | str, tool: str) -> str:
    """application_name of the sessions of a child or of dbt: `luckygas-migrate-17-dbt`."""
    return f"{SESSION_PREFIX}{command}-{record_id}-{tool}"[:63]


def session_pattern(command: str | None = None) -> str:
    """A LIKE pattern matching session_name(command, ...) (any command when None)."""
    return f"{SESSION_PREFIX}{command or '%'}-%".replace("_", "\\_")


def _preexec(parent: int):
    """In the child, before exec: die with the parent (prctl resolved before the fork, so
    that the child calls it and nothing else)."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None

    def child() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os.kill(os.getpid(), signal.SIGKILL)

    return child


def popen(argv: Sequence[str], **kwargs) -> subprocess.Popen:
    """subprocess.Popen of a child that dies with this process (see the module doc).

    PR_SET_PDEATHSIG fires when the thread that started the child ends: start children from
    the thread that waits for them (the cut-over runs in the main thread)."""
    return subprocess.Popen(
        list(argv),
        start_new_session=True,
        preexec_fn=_preexec(os.getpid()),
        umask=CHILD_UMASK,
        **kwargs,
    )


def stop(proc: subprocess.Popen, grace: float = GRACE_SECONDS) -> None:
    """Make sure the child and its process group are gone: SIGTERM to the group, SIGKILL
    after `grace` seconds; waits for it. A no-op for a child that has exited already (its
    pid, once waited for, may belong to another process: it is not signalled then)."""
    if proc.poll() is not None:
        return
    if grace > 0:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
    _signal_group(proc, signal.SIGKILL)
    proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # its own session: its process group id is its pid


@contextlib.contextmanager
def guarded(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """`proc` for the block; on every way out of it the child's group is stopped."""
    try:
        yield proc
    finally:
        stop(proc, grace=0 if sys.exc_info()[0] is not None else GRACE_SECONDS)


def run(argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run(argv, capture_output=True, text=True, check=False) with a guarded child."""
    with guarded(
        popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    ) as proc:
        out, err = proc.communicate()
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is, so that it unwinds as Ctrl-C does."""


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises Terminated in the main thread (a no-op in
    another thread, where no handler can be installed): the `finally`s run, the children
    are stopped, the started steps are undone or the record says where it stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
