"""Organizations and their API keys."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.errors import NotFound, Unprocessable
from service.models import ApiKey, Organization

SCOPES = ("admin", "consents", "verify")
KEY_PREFIX = "cg_"


def hash_api_key(key: str) -> str:
    # API keys carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


def create_organization(session: Session, *, name: str, contact: str) -> Organization:
    """A new organization: people must be told who processes their face and how to reach them (R1)."""
    name, contact = name.strip(), contact.strip()
    if not name or len(name) > 200:
        raise Unprocessable("an organization needs a name of 1 to 200 characters", code="invalid_name")
    if not contact or len(contact) > 200:
        raise Unprocessable(
            "an organization needs a contact people can reach (1 to 200 characters)", code="contact_required"
        )
    org = Organization(name=name, contact=contact)
    session.add(org)
    session.flush()
    record_event(
        session,
        org_id=org.id,
        actor="cli",
        action="organization.created",
        object_type="organization",
        object_id=org.id,
        data={"name": org.name},
    )
    return org


def get_organization(session: Session, org_id: str) -> Organization:
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound(f"organization {org_id} does not exist")
    return org


def update_organization(session: Session, *, org_id: str, actor: str, fields: dict[str, Any]) -> Organization:
    """Change the contact, protection officer or complaint channel (``None`` removes the latter two)."""
    org = get_organization(session, org_id)
    changed: list[str] = []
    if "contact" in fields:
        org.contact = fields["contact"].strip()
        changed.append("contact")
    if "pipo" in fields:
        pipo = fields["pipo"]
        org.pipo_name = pipo["name"].strip() if pipo else None
        org.pipo_contact = pipo["contact"].strip() if pipo else None
        changed.append("pipo")
    if "complaint_channel" in fields:
        org.complaint_channel = fields["complaint_channel"].strip() if fields["complaint_channel"] else None
        changed.append("complaint_channel")
    session.flush()
    record_event(
        session,
        org_id=org_id,
        actor=actor,
        action="organization.updated",
        object_type="organization",
        object_id=org_id,
        data={"changed": changed},
    )
    return org


def list_organizations(session: Session) -> list[Organization]:
    """Every organization, oldest first (for the operator's command line)."""
    return list(session.scalars(select(Organization).order_by(Organization.created_at, Organization.id)))


def create_api_key(
    session: Session,
    *,
    org_id: str,
    scopes: list[str],
    actor: str = "cli",
    name: str | None = None,
    created_by: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; return the row and the key itself, which is shown once and never stored."""
    if session.get(Organization, org_id) is None:
        raise NotFound(f"organization {org_id} does not exist")
    wanted = sorted({s.strip() for s in scopes if s.strip()})
    unknown = [s for s in wanted if s not in SCOPES]
    if not wanted or unknown:
        raise Unprocessable(f"scopes must be among {', '.join(SCOPES)}", code="invalid_scopes")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        org_id=org_id,
        key_hash=hash_api_key(secret),
        prefix=secret[:10],
        scopes=",".join(wanted),
        name=name,
        created_by=created_by,
    )
    session.add(api_key)
    session.flush()
    record_event(
        session,
        org_id=org_id,
        actor=actor,
        action="api_key.created",
        object_type="api_key",
        object_id=api_key.id,
        data={"scopes": wanted, "prefix": api_key.prefix, "name": name},
    )
    return api_key, secret


def find_active_key(session: Session, secret: str) -> ApiKey | None:
    return session.scalars(
        select(ApiKey).where(ApiKey.key_hash == hash_api_key(secret), ApiKey.revoked_at.is_(None))
    ).first()
