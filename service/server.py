"""Serving with gunicorn."""

from __future__ import annotations

import gc
import os
from typing import Any

from gunicorn.app.base import BaseApplication

WORKER_TMP_DIR = "/dev/shm"  # noqa: S108 (memory, for the heartbeat file only; gunicorn creates it privately)


class ConsentGateServer(BaseApplication):
    def __init__(self, options: dict[str, Any], app_config: dict[str, Any]):
        self.options = options
        self.app_config = app_config
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key == "control_socket_disable" and key not in self.cfg.settings:
                continue  # gunicorn before 25.1 has no control socket
            self.cfg.set(key, value)

    def load(self) -> Any:
        from service.db import start_wal_checkpoints

        # Each worker builds its own app, with its own database engine and connection pool, and (on
        # SQLite) checkpoints the log in the background instead of in some request's commit.
        app = worker_app(self.app_config)
        start_wal_checkpoints(app.extensions["consent_gate.engine"])
        # Everything built so far lives as long as the worker: keep it out of the collector's full
        # passes, each of which would otherwise stall some request for tens of milliseconds.
        gc.collect()
        gc.freeze()
        return app


def worker_app(app_config: dict[str, Any]) -> Any:
    """A worker's app: its settings from the environment, its instance folder and its thread count.

    The thread count sizes the worker's connection pool (``DB_POOL_SIZE``), so that no thread waits for
    a connection that another thread of the worker holds.
    """
    from service import create_app

    return create_app(
        {
            "INSTANCE_PATH": app_config["INSTANCE_PATH"],
            "WORKER_THREADS": app_config["WORKER_THREADS"],
            # The one the serving command chose (in development, the address served).
            "PUBLIC_URL": app_config["PUBLIC_URL"],
        }
    )


def _child_exit(_server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def run_gunicorn(*, host: str, port: int, workers: int, threads: int, config: dict[str, Any]) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        # Threads let a worker overlap one request's database wait with another's work.
        "worker_class": "gthread" if threads > 1 else "sync",
        "threads": threads,
        "accesslog": None,
        "timeout": 30,
        # The workers' heartbeat (an fchmod of a temporary file) on a disk-backed directory waits for
        # the file system's journal, which the database's fsyncs keep busy: keep it in memory.
        "worker_tmp_dir": WORKER_TMP_DIR if os.path.isdir(WORKER_TMP_DIR) else None,
        "graceful_timeout": 10,
        "child_exit": _child_exit,
        # gunicorn 25.1+ opens a control socket (for gunicornc) at one path per user,
        # $XDG_RUNTIME_DIR/gunicorn.ctl: a second instance on the host would take the first one's over,
        # and the first to stop would remove it. We manage workers with signals, so there is none.
        "control_socket_disable": True,
    }
    ConsentGateServer(options, {**config, "WORKER_THREADS": threads}).run()
