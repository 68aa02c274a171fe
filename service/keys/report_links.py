"""Signed links to one organization's compliance report: the page opens without an API key until they expire.

A link's token is an ES256 JWT signed with the service's signing key, like a consent token, but of its
own kind: header ``typ`` ``report-link+jwt`` and audience ``<issuer>/report`` (a consent token's audience
is an organization id, its ``typ`` ``consent+jwt``), so neither can stand for the other. The organization
is the signed ``sub``; the expiry ``exp`` is signed too, so a link can be neither pointed at another
organization nor extended. Each link's ``jti`` names it in the organization's audit trail.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import jwt

from service.keys.tokens import ALGORITHM, FORBIDDEN_HEADERS, KeySet, canonical

LINK_TYPE = "report-link+jwt"
#: A link lives at least an hour and at most 30 days.
MIN_HOURS, MAX_HOURS = 1, 720


class InvalidReportLink(Exception):
    """The token is not a live report link of this service (forged, altered, expired, another kind)."""


def audience(issuer: str) -> str:
    return f"{issuer}/report"


def encode_report_link(
    keys: KeySet, *, issuer: str, org_id: str, link_id: str, issued_at: datetime, expires_at: datetime
) -> str:
    if not timedelta(hours=MIN_HOURS) <= expires_at - issued_at <= timedelta(hours=MAX_HOURS):
        raise ValueError(f"a report link lives {MIN_HOURS} to {MAX_HOURS} hours")
    claims = {
        "iss": issuer,
        "aud": audience(issuer),
        "sub": org_id,
        "jti": link_id,
        "iat": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    token = jwt.encode(claims, keys.signing_key, algorithm=ALGORITHM, headers={"typ": LINK_TYPE, "kid": keys.kid})
    return canonical(token)


def decode_report_link(token: str, public_keys: dict[str, Any], *, issuer: str) -> dict[str, Any]:
    """The claims of a live report link; :class:`InvalidReportLink` for anything else, whatever the cause.

    One link, one spelling: a token that is not in its canonical form (padded, another base64 alphabet,
    stray bits, the high-S twin of its signature) is refused before anything else looks at it. Nothing
    here raises anything but :class:`InvalidReportLink`: an exception escaping would be logged, with the
    request, as an error.
    """
    try:
        if token != canonical(token):
            raise InvalidReportLink("not canonical")
    except (ValueError, OverflowError) as exc:  # not canonical base64url; a "signature" far too long
        raise InvalidReportLink("not canonical") from exc
    try:
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or header.get("typ") != LINK_TYPE or FORBIDDEN_HEADERS.intersection(header):
            raise InvalidReportLink("not a report link")
        key = public_keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidReportLink("unknown key")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience(issuer),
            issuer=issuer,
            options={"require": ["iss", "aud", "sub", "jti", "iat", "exp"], "strict_aud": True},
        )
    except jwt.PyJWTError as exc:
        raise InvalidReportLink("invalid report link") from exc
    lifetime = claims["exp"] - claims["iat"]
    if not isinstance(claims["sub"], str) or not isinstance(lifetime, int) or lifetime > MAX_HOURS * 3600:
        raise InvalidReportLink("not a report link")
    return claims
