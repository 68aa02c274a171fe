"""Signing keys, consent tokens (ES256 JWTs) and the JWKS that publishes their public keys.

The signing key file holds one or more PEM private keys: the first signs new tokens, the others are
previous keys still trusted for verification until the tokens they signed expire.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
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
    """The private keys' PEM blocks of a key file, in order.

    Other blocks are skipped: ``openssl ecparam -name prime256v1 -genkey`` writes an ``EC PARAMETERS``
    block before its ``EC PRIVATE KEY``, and a certificate or public key may sit beside the keys. A key of
    the wrong kind (RSA, another curve) is still a private key, and is refused by the loader.
    """
    parts = blob.split(PEM_BEGIN)
    return [PEM_BEGIN + part for part in parts[1:] if _PEM_LABEL.match(part)]


#: The label after ``-----BEGIN``: ``PRIVATE KEY``, ``EC PRIVATE KEY``, ``ENCRYPTED PRIVATE KEY``, ...
_PEM_LABEL = re.compile(rb" [A-Z0-9 ]*PRIVATE KEY-----")


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


def create_key_file(path: str) -> str:
    """Write a new production signing key to ``path`` (mode 0600), never over an existing file; its kid.

    Raises ``FileExistsError`` when ``path`` exists and ``FileNotFoundError`` when its folder does not.
    """
    pem = generate_private_key_pem()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return KeySet.from_pem_blob(pem).kid


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
    return canonical(
        jwt.encode(claims, keys.signing_key, algorithm=ALGORITHM, headers={"typ": TOKEN_TYPE, "kid": keys.kid})
    )


def canonical(token: str) -> str:
    """The token with its ES256 signature in low-S form, the only form :func:`decode_consent_token` accepts."""
    signing_input, _, signature = token.rpartition(".")
    return f"{signing_input}.{b64url(_low_s(_b64decode(signature)))}"


#: The order of P-256: a signature's ``s`` above half of it is the "high-S" twin of a valid signature.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64decode(segment: str) -> bytes:
    """Decode one segment in its canonical encoding only: base64url, no padding, no stray bits.

    Anything else could spell one token in endless distinct strings (each cached apart, each logged
    apart); it is an invalid token.
    """
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not canonical base64url")
    decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if b64url(decoded) != segment:
        raise ValueError("not canonical base64url")
    return decoded


def _low_s(signature: bytes) -> bytes:
    """The one canonical form of an ES256 signature: ``s`` in the lower half of the group order."""
    r, s = signature[:32], int.from_bytes(signature[32:], "big")
    return r + (P256_ORDER - s).to_bytes(32, "big") if s > P256_ORDER // 2 else signature


_ES256 = ECAlgorithm(ECAlgorithm.SHA256)


def decode_consent_token(
    token: str, public_keys: dict[str, Any], *, issuer: str, audience: str, leeway: int = 0, now: float | None = None
) -> dict[str, Any]:
    """Verify a consent token and return its claims; raise :class:`InvalidToken` otherwise."""
    return _verify(token, public_keys, issuer=issuer, audience=audience, leeway=leeway, now=now)[1]


def _verify(
    token: str, public_keys: dict[str, Any], *, issuer: str, audience: str, leeway: int = 0, now: float | None = None
) -> tuple[str, dict[str, Any]]:
    """Verify a consent token; return the ``kid`` that signed it and its claims.

    The algorithm is pinned to ES256 and the key comes only from ``public_keys`` by ``kid``; header
    parameters that name keys elsewhere are refused, never followed. The token is parsed once (this is
    the hot path of every verification): split, decode, check the header, verify the signature with
    PyJWT's ES256 implementation, then check the claims.
    """
    try:
        header_segment, payload_segment, signature_segment = token.split(".")
        header = json.loads(_b64decode(header_segment))
        signature = _b64decode(signature_segment)
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidToken("malformed token") from exc
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE:
        raise InvalidToken("wrong algorithm or type")
    if FORBIDDEN_HEADERS.intersection(header):
        raise InvalidToken("token names a key source")
    kid = header.get("kid")
    key = public_keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise UnknownKey("unknown key")
    if len(signature) != 64 or _low_s(signature) != signature:
        raise InvalidToken("not a canonical ES256 signature")
    signing_input = f"{header_segment}.{payload_segment}".encode()
    try:
        valid = _ES256.verify(signing_input, key, signature)
    except Exception as exc:  # a malformed signature is just an invalid token
        raise InvalidToken("bad signature") from exc
    if not valid:
        raise InvalidToken("bad signature")
    try:
        claims = json.loads(_b64decode(payload_segment))
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
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
    return str(kid), claims  # a str: a kid of another type found no key above


class VerifiedTokenCache:
    """Remembers tokens whose signature and claims were verified, so a token seen again costs no ECDSA.

    A signature's validity never changes, so caching it is harmless as long as the key that made it is
    still trusted: each hit checks that the token's ``kid`` is still among the keys in use (a key removed
    from ``SIGNING_KEY_FILE`` stops verifying as soon as the key ring reloads, within 5 s, cached or not).
    Expiry is checked again on every hit; the consent's state is never cached here. Only canonical
    tokens verify, so one token has one spelling and one entry. Bounded in bytes: when full, it starts over.
    """

    #: What an entry costs beyond its token's characters: the claims dict, the key tuple, the dict slot.
    ENTRY_OVERHEAD = 1200

    def __init__(self, max_bytes: int = 32 * 1024 * 1024):
        self.max_bytes = max_bytes
        self._bytes = 0
        self._claims: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = {}

    def decode(self, token: str, public_keys: dict[str, Any], *, issuer: str, audience: str) -> dict[str, Any]:
        key = (token, issuer, audience)
        entry = self._claims.get(key)
        if entry is None:
            kid, claims = _verify(token, public_keys, issuer=issuer, audience=audience)
            size = len(token) + self.ENTRY_OVERHEAD
            if self._bytes + size > self.max_bytes:
                self._claims.clear()
                self._bytes = 0
            self._claims[key] = (kid, claims)
            self._bytes += size
            return claims
        kid, claims = entry
        if kid not in public_keys:
            self._claims.pop(key, None)
            raise UnknownKey("the key that signed this token is no longer trusted")
        if claims["exp"] <= time.time():
            raise ExpiredToken("token expired")
        return claims
