"""Serving with gunicorn."""

from __future__ import annotations

import os
from typing import Any

from gunicorn.app.base import BaseApplication


class ConsentGateServer(BaseApplication):
    def __init__(self, options: dict[str, Any], app_config: dict[str, Any]):
        self.options = options
        self.app_config = app_config
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from service import create_app

        # Each worker builds its own app, with its own database engine and connection pool.
        return create_app({"INSTANCE_PATH": self.app_config["INSTANCE_PATH"]})


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
        "graceful_timeout": 10,
        "child_exit": _child_exit,
    }
    ConsentGateServer(options, config).run()
