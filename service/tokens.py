"""Signing keys, consent tokens (ES256 JWTs) and the JWKS that publishes their public keys.

The signing key file holds one or more PEM private keys: the first signs new tokens, the others are
previous keys still trusted for verification until the tokens they signed expire.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
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


class InvalidToken(Exception):
    """The token is not a valid consent token for this verifier."""


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
        handle.write(generate_private_key_pem())


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


def decode_consent_token(
    token: str, public_keys: dict[str, Any], *, issuer: str, audience: str, leeway: int = 0
) -> dict[str, Any]:
    """Verify a consent token and return its claims; raise :class:`InvalidToken` otherwise.

    The algorithm is pinned, the key comes only from ``public_keys`` by ``kid``; header parameters
    that name keys elsewhere are refused, never followed.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken("malformed token") from exc
    if header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE:
        raise InvalidToken("wrong algorithm or type")
    if FORBIDDEN_HEADERS.intersection(header):
        raise InvalidToken("token names a key source")
    key = public_keys.get(header.get("kid"))  # type: ignore[arg-type]
    if key is None:
        raise InvalidToken("unknown key")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": REQUIRED_CLAIMS, "strict_aud": True},
        )
    except jwt.ExpiredSignatureError as exc:
        raise ExpiredToken("token expired") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("pur"), str):
        raise InvalidToken("jti and pur must be strings")
    if not isinstance(claims.get("sub"), str):
        raise InvalidToken("sub must be a string")
    return claims
