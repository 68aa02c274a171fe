"""The app's signing keys: loaded at start-up from ``SIGNING_KEY_FILE``.

In development a missing key file is generated (mode 0600) in the instance folder; anywhere else
the service refuses to start without one.
"""

from __future__ import annotations

from flask import Flask, current_app

from service.tokens import KeySet, ensure_key_file, load_key_set


def init_app(app: Flask) -> None:
    path = app.config["SIGNING_KEY_FILE"]
    ensure_key_file(path, allow_generate=app.config["ENV"] in {"development", "test"})
    app.extensions["consent_gate.keys"] = load_key_set(path)


def key_set() -> KeySet:
    return current_app.extensions["consent_gate.keys"]


def issuer() -> str:
    return current_app.config["ISSUER"]
