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
            if key.startswith("control_socket") and key not in self.cfg.settings:
                continue  # gunicorn before 25.1 has no control socket
            self.cfg.set(key, value)

    def load(self) -> Any:
        from service.db import start_wal_checkpoints

        # Each worker builds its own app, with its own database engine and connection pool, and (on
        # SQLite) checkpoints the log in the background instead of in some request's commit.
        app = worker_app(self.app_config)
        start_wal_checkpoints(app.extensions["consent_gate.engine"])
        if self.app_config.get("DISPATCH", True):
            # One dispatcher per worker (a thread for SMS, one for webhooks and jobs): each row is claimed by
            # one dispatcher at a time, and the claim is checked again just before each send; one worker's
            # death leaves the others sending.
            from service.outbox.dispatcher import start_dispatcher

            start_dispatcher(app)
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


def control_socket_path(instance_path: str, port: int) -> str:
    """The gunicorn control socket of the instance serving ``port`` (``gunicornc -s PATH``), mode 0600."""
    return os.path.join(os.path.abspath(instance_path), f"gunicorn-{port}.ctl")


def run_gunicorn(
    *, host: str, port: int, workers: int, threads: int, config: dict[str, Any], dispatch: bool = True
) -> None:
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
        # gunicorn 25.1+ opens a control socket (for gunicornc), by default at one path per user,
        # $XDG_RUNTIME_DIR/gunicorn.ctl, which a second instance on the host would take over (and the first
        # to stop would remove). One per instance instead: in its instance folder, named by its port.
        "control_socket": control_socket_path(config["INSTANCE_PATH"], port),
    }
    ConsentGateServer(options, {**config, "WORKER_THREADS": threads, "DISPATCH": dispatch}).run()
