"""The app's signing keys, from ``SIGNING_KEY_FILE``, reloaded when the file changes.

In development a missing key file is generated (mode 0600) in the instance folder; anywhere else the
service refuses to start without one. ``consent-gate keys rotate-signing`` puts a new key first in the
file; every instance notices within ``RELOAD_SECONDS`` (a bounded, harmless staleness: until then it
keeps signing with the previous key, which every instance still trusts).
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime

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


def _write_atomically(path: str, data: bytes) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def stopped_signing(path: str) -> dict[str, str]:
    """When each previous key stopped signing (kid → ISO time), recorded beside the key file by rotations."""
    try:
        with open(f"{path}.stopped.json", encoding="utf-8") as handle:
            recorded = json.load(handle)
    except FileNotFoundError:
        return {}
    return {str(kid): str(moment) for kid, moment in recorded.items()}


def _record_stopped(path: str, stopped: dict[str, str]) -> None:
    _write_atomically(f"{path}.stopped.json", json.dumps(stopped, indent=2, sort_keys=True).encode())


def rotate_key_file(path: str) -> KeySet:
    """Write a new key first in the file, keeping the previous ones for verification; atomic, mode 0600.

    The moment the previous key stopped signing is recorded beside the file, for ``retire_key``.
    """
    with open(path, "rb") as handle:
        previous_blob = handle.read()
    previous = split_pems(previous_blob)
    blob = generate_private_key_pem() + b"".join(previous)
    stopped = stopped_signing(path)
    stopped.setdefault(KeySet.from_pem_blob(previous_blob).kid, datetime.now(UTC).isoformat())
    _record_stopped(path, stopped)
    _write_atomically(path, blob)
    return KeySet.from_pem_blob(blob)


def retire_key(path: str, kid: str) -> KeySet:
    """Remove a previous key from the file: tokens it signed stop verifying (the caller checked none is live)."""
    with open(path, "rb") as handle:
        pems = split_pems(handle.read())
    kept = [pem for pem in pems if KeySet.from_pem_blob(pem).kid != kid]
    if len(kept) == len(pems):
        raise KeyError(kid)
    if not kept or KeySet.from_pem_blob(pems[0]).kid == kid:
        raise ValueError("the current signing key cannot be retired: rotate first")
    _write_atomically(path, b"".join(kept))
    stopped = stopped_signing(path)
    stopped.pop(kid, None)
    _record_stopped(path, stopped)
    return KeySet.from_pem_blob(b"".join(kept))


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
