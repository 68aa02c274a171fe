"""The app's signing keys, from ``SIGNING_KEY_FILE``, reloaded when the file changes.

In development a missing key file is generated (mode 0600) in the instance folder; anywhere else the
service refuses to start without one. ``consent-gate keys rotate-signing`` puts a new key first in the
file; every instance notices within ``RELOAD_SECONDS`` (a bounded, harmless staleness: until then it
keeps signing with the previous key, which every instance still trusts).
"""

from __future__ import annotations

import os
import threading
import time

from flask import Flask, current_app

from service.keys.tokens import (
    DEVELOPMENT_MARKER,
    KeySet,
    ensure_key_file,
    generate_private_key_pem,
    load_key_set,
    split_pems,
)

RELOAD_SECONDS = 5.0


class KeyRing:
    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._mtime = os.stat(path).st_mtime_ns
        self._keys = load_key_set(path)
        self._checked = time.monotonic()

    def current(self) -> KeySet:
        now = time.monotonic()
        if now - self._checked >= RELOAD_SECONDS:
            with self._lock:
                self._checked = now
                mtime = os.stat(self.path).st_mtime_ns
                if mtime != self._mtime:
                    self._keys, self._mtime = load_key_set(self.path), mtime
        return self._keys

    def reload(self) -> KeySet:
        with self._lock:
            self._keys, self._mtime = load_key_set(self.path), os.stat(self.path).st_mtime_ns
            self._checked = time.monotonic()
        return self._keys


def rotate_key_file(path: str) -> KeySet:
    """Write a new key first in the file, keeping the previous ones for verification; atomic, mode 0600."""
    with open(path, "rb") as handle:
        previous = split_pems(handle.read())
    blob = generate_private_key_pem() + b"".join(previous)
    temporary = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(blob)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return KeySet.from_pem_blob(blob)


class UnsafeSigningKey(RuntimeError):
    """The signing key file is not fit for production."""


def init_app(app: Flask) -> None:
    path = app.config["SIGNING_KEY_FILE"]
    development = app.config["ENV"] in {"development", "test"}
    ensure_key_file(path, allow_generate=development)
    if not development:
        with open(path, "rb") as handle:
            if DEVELOPMENT_MARKER.strip() in handle.read():
                raise UnsafeSigningKey(f"{path} was generated for development: provision a real key outside it")
    try:
        app.extensions["consent_gate.keyring"] = KeyRing(path)
    except ValueError as exc:  # no PEM, an HMAC secret, an RSA or other-curve key: all refused
        raise UnsafeSigningKey(f"{path}: {exc}") from exc


def keyring() -> KeyRing:
    return current_app.extensions["consent_gate.keyring"]


def key_set() -> KeySet:
    return keyring().current()


def issuer() -> str:
    return current_app.config["ISSUER"]
