"""The database server's CPU, for the benchmarks: read from /proc when the server runs on
this machine (the embedded one, or a local cluster), else unknown (None).

The server's CPU over a step is `server_cpu()` after minus before: the postmaster's user and
system time with that of the children it has reaped (the backends that exited meanwhile), plus
that of every child still running. It is all the server did meanwhile, for whoever asked
(other sessions, autovacuum, checkpoints).
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg


def postmaster_pid(conninfo: str) -> int | None:
    """The server's postmaster pid, if the server runs on this machine and /proc shows it.

    The parent of a short session's backend. The pid the server reports is only taken as a
    process of this machine if that process's title names the session's client port (a remote
    server's pid, or one from another pid namespace, is some other process here, or none).
    """
    try:
        with psycopg.connect(conninfo) as conn:
            pid, port = conn.execute("select pg_backend_pid(), inet_client_port()").fetchone()
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, psycopg.Error):
        return None
    if (
        not title.startswith("postgres:")
        or ("[local]" if port is None else f"({port})") not in title
    ):
        return None
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:"))


def stat_fields(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name: [0] is field 3 (the state)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def server_cpu(postmaster: int | None) -> float | None:
    """CPU seconds the server has used so far; None if unknown.

    The postmaster's utime + stime + cutime + cstime (fields 14-17), which take in every child
    it has reaped, plus the same fields of each child still running.
    """
    if postmaster is None:
        return None
    try:
        ticks = sum(int(f) for f in stat_fields(postmaster)[11:15])
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = stat_fields(entry.name)
            except OSError:  # exited meanwhile
                continue
            if int(fields[1]) == postmaster:
                ticks += sum(int(f) for f in fields[11:15])
    except (OSError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")
