"""Personal data at rest: phone numbers encrypted with ``DATA_KEY``, keyed hashes for lookups and limits.

``DATA_KEY`` is 32 random bytes, base64-encoded. Separate sub-keys are derived from it (HKDF) for
encryption, lookup hashes, one-time codes and form tokens, so no one key serves two uses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class DataKeyError(ValueError):
    """DATA_KEY is missing or malformed."""


def generate_data_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _derive(master: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"consent-gate/{purpose}".encode()).derive(master)


class DataProtector:
    def __init__(self, data_key: str):
        try:
            master = base64.urlsafe_b64decode(data_key.encode() + b"=" * (-len(data_key) % 4))
        except (ValueError, TypeError) as exc:
            raise DataKeyError("DATA_KEY must be base64") from exc
        if len(master) < 32:
            raise DataKeyError("DATA_KEY must hold at least 32 random bytes")
        self._aead = AESGCM(_derive(master, "encrypt"))
        self._lookup = _derive(master, "lookup")
        self._codes = _derive(master, "codes")
        self._forms = _derive(master, "forms")

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), b"consent-gate")
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, ciphertext: str) -> str:
        raw = base64.urlsafe_b64decode(ciphertext.encode())
        return self._aead.decrypt(raw[:12], raw[12:], b"consent-gate").decode()

    def lookup_hash(self, value: str) -> str:
        """A keyed hash: equal inputs match, but the hash alone reveals nothing without DATA_KEY."""
        return hmac.new(self._lookup, value.encode(), hashlib.sha256).hexdigest()

    def code_hash(self, scope: str, code: str) -> str:
        return hmac.new(self._codes, f"{scope}:{code}".encode(), hashlib.sha256).hexdigest()

    def form_token(self, *parts: str) -> str:
        return hmac.new(self._forms, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """Link tokens carry 256 random bits: a plain SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
