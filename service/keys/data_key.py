"""The app's ``DATA_KEY``: from the environment, or generated once into the instance folder in development."""

from __future__ import annotations

import os

from flask import Flask, current_app

from service.keys.crypto import DataProtector, generate_data_key


def _development_key(instance_path: str) -> str:
    path = os.path.join(instance_path, "data-key")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(path) as handle:
            return handle.read().strip()
    with os.fdopen(fd, "w") as handle:
        key = generate_data_key()
        handle.write(key)
    return key


def init_app(app: Flask) -> None:
    key = app.config.get("DATA_KEY")
    if not key:
        if app.config["ENV"] not in {"development", "test"}:
            raise RuntimeError("CONSENT_GATE_DATA_KEY is required outside development")
        key = _development_key(app.instance_path)
    app.extensions["consent_gate.protector"] = DataProtector(key)  # refuses keys under 32 bytes


def protector() -> DataProtector:
    return current_app.extensions["consent_gate.protector"]
