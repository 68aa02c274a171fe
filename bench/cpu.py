"""CPU time per request of the servers under load, read from /proc (Linux) before and after a measured run.

A server is a process tree (a gunicorn master and its workers; a PostgreSQL postmaster and its backends).
Its CPU over a run is the change of each process's own time (utime + stime in /proc/<pid>/stat) between the
two readings, with processes told apart by pid and start time (pids are reused): one alive at both readings
counts its difference, one started in between counts all of its time. One that ended in between counts
through its parent's reaped-children time (cutime + cstime), which grows by the child's whole life when the
parent waits for it: so the reaped time is counted too, and an ended process's time before the first
reading is taken off. (For PostgreSQL the postmaster's reaped time would bring in other databases'
backends, so there it is left out and a backend of ours that ends during the run is missed; the app's pool
keeps its connections.)

The machine's own counters (/proc/stat) give the cores busy in the same window, so what the servers and
the load generator used can be told apart from everything else on the machine.
"""

from __future__ import annotations

import os
import re
import resource
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")  # /proc's unit of CPU time, per second
PROC = Path("/proc")
# A client backend's title: "postgres: [cluster: ]user database host(port)|[local] activity".
_BACKEND_TITLE = re.compile(r"^postgres: (?:\S+: )?\S+ (?P<database>\S+) (?:\S+\(\d+\)|\[local\])")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    started: int  # ticks after boot: with the pid, one process's identity
    own: int  # utime + stime, ticks
    reaped: int  # cutime + cstime: the children this process has waited for, ticks


Snapshot = dict[tuple[int, int], Proc]


def read_proc(pid: int) -> Proc | None:
    """One process's times, or None when it has gone (or is not readable)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime..cstime fields 14-17, starttime field 22.
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return Proc(pid=pid, ppid=int(fields[1]), started=int(fields[19]), own=utime + stime, reaped=cutime + cstime)


def process_tree(root: int) -> list[Proc]:
    """The root and all of its descendants alive (or not yet reaped) now."""
    processes = [proc for proc in map(read_proc, _pids()) if proc is not None]
    children: dict[int, list[Proc]] = {}
    for proc in processes:
        children.setdefault(proc.ppid, []).append(proc)
    found = [proc for proc in processes if proc.pid == root]
    for proc in found:  # grows while it is walked: breadth first
        found.extend(children.get(proc.pid, []))
    return found


def snapshot(root: int, keep: Callable[[int], bool] | None = None) -> Snapshot:
    return {(proc.pid, proc.started): proc for proc in process_tree(root) if keep is None or keep(proc.pid)}


def used_seconds(before: Snapshot, after: Snapshot, *, reaped: bool) -> float:
    """CPU seconds that a tree's processes used between two snapshots (see the module's docstring)."""

    def total(proc: Proc) -> int:
        return proc.own + (proc.reaped if reaped else 0)

    ticks = 0
    for key, proc in after.items():
        ticks += total(proc) - (total(before[key]) if key in before else 0)
    if reaped:  # ended in between: its parent's reaped time now holds its whole life
        ticks -= sum(total(proc) for key, proc in before.items() if key not in after)
    return ticks / TICK


def postmaster_of(backend_pid: int) -> int | None:
    """The local postmaster that serves a connection, given its backend's pid (``SELECT pg_backend_pid()``),
    or None when the server is not on this machine."""
    backend = read_proc(backend_pid)
    if backend is None or _comm(backend_pid) != "postgres" or _comm(backend.ppid) != "postgres":
        return None
    return backend.ppid


def not_other_database(database: str) -> Callable[[int], bool]:
    """Keeps a PostgreSQL server's processes except client backends connected to another database
    (the server's shared processes, such as the WAL writer and the checkpointer, work for every database)."""

    def keep(pid: int) -> bool:
        try:
            title = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        match = _BACKEND_TITLE.match(title.strip())
        return match is None or match["database"] == database

    return keep


@dataclass(frozen=True)
class Machine:
    busy: int  # user + nice + system + irq + softirq, ticks over all cores
    steal: int  # ticks the hypervisor gave to someone else
    total: int  # all ticks over all cores

    @staticmethod
    def read() -> Machine:
        names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
        line = (PROC / "stat").read_text().splitlines()[0].split()
        ticks = dict(zip(names, (int(value) for value in line[1:9]), strict=True))
        busy = ticks["user"] + ticks["nice"] + ticks["system"] + ticks["irq"] + ticks["softirq"]
        return Machine(busy=busy, steal=ticks["steal"], total=sum(ticks.values()))


@dataclass(frozen=True)
class Reading:
    app: Snapshot
    db: Snapshot | None
    load: float  # CPU seconds of this process's waited-for children: the load generator, once it has ended
    machine: Machine


@dataclass(frozen=True)
class CpuMeter:
    """Reads a server's CPU (``app``: the root pid of its process tree) and optionally its local PostgreSQL
    server's (``db``: the postmaster's pid, with ``keep`` choosing its processes; ``db_in_app`` when the
    database is a library inside the app, as SQLite is, whose time is the app's)."""

    app: int
    db: int | None = None
    keep: Callable[[int], bool] | None = None
    db_in_app: bool = False

    def read(self) -> Reading:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return Reading(
            app=snapshot(self.app),
            db=snapshot(self.db, self.keep) if self.db is not None else None,
            load=children.ru_utime + children.ru_stime,
            machine=Machine.read(),
        )

    def per_request(self, before: Reading, after: Reading, requests: int) -> dict[str, float]:
        """Microseconds of CPU per completed request of the app, its database (when measured) and the load
        generator; and the machine's cores busy over the run, and those the hypervisor took (steal)."""
        app = used_seconds(before.app, after.app, reaped=True)
        db = 0.0
        if before.db is not None and after.db is not None:
            db = used_seconds(before.db, after.db, reaped=False)
        share = (os.cpu_count() or 1) / max(after.machine.total - before.machine.total, 1)  # cores per tick
        result = {
            "app_cpu_us": app / requests * 1e6,
            "wrk_cpu_us": (after.load - before.load) / requests * 1e6,
            "busy_cores": (after.machine.busy - before.machine.busy) * share,
            "steal_cores": (after.machine.steal - before.machine.steal) * share,
        }
        if self.db is not None or self.db_in_app:
            result["db_cpu_us"] = db / requests * 1e6  # 0 when the database works inside the app (SQLite)
        return result


def _pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def _comm(pid: int) -> str | None:
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return None
