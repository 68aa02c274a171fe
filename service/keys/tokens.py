"""Signing keys, consent tokens (ES256 JWTs) and the JWKS that publishes their public keys.

The signing key file holds one or more PEM private keys: the first signs new tokens, the others are
previous keys still trusted for verification until the tokens they signed expire.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ALGORITHM = "ES256"
TOKEN_TYPE = "consent+jwt"  # noqa: S105 (a media type, not a secret)
#: Header parameters that point at keys elsewhere or demand extensions; never honoured, always refused.
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti", "pur"]
PEM_BEGIN = b"-----BEGIN"
#: Written above keys generated for development; outside development such a key file is refused.
DEVELOPMENT_MARKER = b"# consent-gate development signing key: generated locally, never use it in production\n"


class InvalidToken(Exception):
    """The token is not a valid consent token for this verifier."""


class UnknownKey(InvalidToken):
    """The token names a ``kid`` this verifier does not hold (yet)."""


class ExpiredToken(InvalidToken):
    """The token was valid but its ``exp`` has passed."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    jwk: dict[str, str] = json.loads(ECAlgorithm.to_jwk(public_key))
    return {"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"]}


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 JWK thumbprint, used as the ``kid``."""
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest())


def generate_private_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def split_pems(blob: bytes) -> list[bytes]:
    parts = blob.split(PEM_BEGIN)
    return [PEM_BEGIN + part for part in parts[1:] if part.strip()]


@dataclass
class KeySet:
    """The current signing key and every key a token may still be verified with."""

    signing_key: ec.EllipticCurvePrivateKey
    kid: str
    public_keys: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)
    jwks: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_pem_blob(cls, blob: bytes) -> KeySet:
        pems = split_pems(blob)
        if not pems:
            raise ValueError("the signing key file holds no PEM private key")
        public_keys: dict[str, ec.EllipticCurvePublicKey] = {}
        jwks_keys: list[dict[str, str]] = []
        signing_key: ec.EllipticCurvePrivateKey | None = None
        kid = ""
        for pem in pems:
            private = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
                raise ValueError("signing keys must be EC P-256 private keys (ES256)")
            jwk = public_jwk(private.public_key())
            key_id = thumbprint(jwk)
            if signing_key is None:
                signing_key, kid = private, key_id
            if key_id not in public_keys:
                public_keys[key_id] = private.public_key()
                jwks_keys.append({**jwk, "kid": key_id, "alg": ALGORITHM, "use": "sig"})
        assert signing_key is not None
        return cls(signing_key=signing_key, kid=kid, public_keys=public_keys, jwks={"keys": jwks_keys})


def ensure_key_file(path: str, *, allow_generate: bool) -> None:
    """Create the development signing key (mode 0600) when it is missing and that is allowed."""
    if os.path.exists(path):
        return
    if not allow_generate:
        raise FileNotFoundError(f"signing key file {path} does not exist")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another worker created it first
    with os.fdopen(fd, "wb") as handle:
        handle.write(DEVELOPMENT_MARKER + generate_private_key_pem())


def load_key_set(path: str) -> KeySet:
    with open(path, "rb") as handle:
        return KeySet.from_pem_blob(handle.read())


def encode_consent_token(
    keys: KeySet,
    *,
    issuer: str,
    org_id: str,
    subject_id: str,
    consent_id: str,
    purpose: str,
    issued_at: datetime,
    expires_at: datetime,
    guardian: bool,
    notice_digest: str,
    status: dict[str, Any] | None = None,
) -> str:
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject_id,
        "aud": org_id,
        "jti": consent_id,
        "pur": purpose,
        "iat": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
        "grd": guardian,
        "ntc": notice_digest,
    }
    if status is not None:
        claims["status"] = status
    return jwt.encode(claims, keys.signing_key, algorithm=ALGORITHM, headers={"typ": TOKEN_TYPE, "kid": keys.kid})


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


_ES256 = ECAlgorithm(ECAlgorithm.SHA256)


def decode_consent_token(
    token: str, public_keys: dict[str, Any], *, issuer: str, audience: str, leeway: int = 0, now: float | None = None
) -> dict[str, Any]:
    """Verify a consent token and return its claims; raise :class:`InvalidToken` otherwise.

    The algorithm is pinned to ES256 and the key comes only from ``public_keys`` by ``kid``; header
    parameters that name keys elsewhere are refused, never followed. The token is parsed once (this is
    the hot path of every verification): split, decode, check the header, verify the signature with
    PyJWT's ES256 implementation, then check the claims.
    """
    try:
        header_segment, payload_segment, signature_segment = token.split(".")
        header = json.loads(_b64decode(header_segment))
        signature = _b64decode(signature_segment)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidToken("malformed token") from exc
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE:
        raise InvalidToken("wrong algorithm or type")
    if FORBIDDEN_HEADERS.intersection(header):
        raise InvalidToken("token names a key source")
    kid = header.get("kid")
    key = public_keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise UnknownKey("unknown key")
    signing_input = f"{header_segment}.{payload_segment}".encode()
    try:
        valid = _ES256.verify(signing_input, key, signature)
    except Exception as exc:  # a malformed signature is just an invalid token
        raise InvalidToken("bad signature") from exc
    if not valid:
        raise InvalidToken("bad signature")
    try:
        claims = json.loads(_b64decode(payload_segment))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidToken("malformed payload") from exc
    if not isinstance(claims, dict) or any(name not in claims for name in REQUIRED_CLAIMS):
        raise InvalidToken("missing claims")
    for name in ("jti", "pur", "sub", "iss"):
        if not isinstance(claims[name], str):
            raise InvalidToken(f"{name} must be a string")
    exp, iat = claims["exp"], claims["iat"]
    if (
        isinstance(exp, bool)
        or isinstance(iat, bool)
        or not isinstance(exp, int | float)
        or not isinstance(iat, int | float)
    ):
        raise InvalidToken("exp and iat must be numbers")
    if claims["iss"] != issuer:
        raise InvalidToken("wrong issuer")
    aud = claims["aud"]
    if aud != audience:  # strict: a single audience string, ours
        raise InvalidToken("wrong audience")
    moment = time.time() if now is None else now
    if iat > moment + leeway + 60:
        raise InvalidToken("issued in the future")
    if exp <= moment - leeway:
        raise ExpiredToken("token expired")
    return claims


class VerifiedTokenCache:
    """Remembers tokens whose signature and claims were verified, so a token seen again costs no ECDSA.

    A signature's validity never changes (verification keys are only ever added), so caching it is
    harmless; expiry is checked again on every hit, and the consent's state is never cached here.
    Bounded: when full, it starts over.
    """

    def __init__(self, max_entries: int = 50_000):
        self.max_entries = max_entries
        self._claims: dict[tuple[str, str, str], dict[str, Any]] = {}

    def decode(self, token: str, public_keys: dict[str, Any], *, issuer: str, audience: str) -> dict[str, Any]:
        key = (token, issuer, audience)
        claims = self._claims.get(key)
        if claims is None:
            claims = decode_consent_token(token, public_keys, issuer=issuer, audience=audience)
            if len(self._claims) >= self.max_entries:
                self._claims.clear()
            self._claims[key] = claims
        elif claims["exp"] <= time.time():
            raise ExpiredToken("token expired")
        return claims
