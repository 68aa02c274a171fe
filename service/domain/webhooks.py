"""The organization's webhooks: created with a URL and the events it wants, listed, deleted; and their
deliveries, read from the outbox. The events themselves are queued by ``service.outbox.events``."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.domain.guardian.messages import lock_organization
from service.domain.pages import Page, page
from service.errors import NotFound, Unprocessable
from service.keys.crypto import DataProtector
from service.models import OutboxMessage, Webhook
from service.outbox import QUEUED, WEBHOOK
from service.outbox.webhooks import UrlRefused, check_url, new_secret

#: How long the name's resolution at creation may take (a name server that never answers must not hold the
#: request, nor on SQLite the write lock its transaction may hold): then 422, "does not resolve".
RESOLVE_SECONDS = 5.0

#: Every event a webhook may ask for (DESIGN.md, "Reaching people and systems").
EVENTS = (
    "consent.granted",
    "consent.revoked",
    "consent.expired",
    "consent.declined",
    "consent.reconsent_required",
    "subject.erased",
    "guardian_request.decided",
    "deletion.overdue",
)
MAX_WEBHOOKS = 20
URL_MAX = 2048


def create_webhook(
    session: Session,
    *,
    org_id: str,
    actor: str,
    protector: DataProtector,
    url: str,
    events: list[str],
    development: bool,
) -> tuple[Webhook, str]:
    """A new webhook and its secret (``whsec_…``), which the caller shows once."""
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        raise Unprocessable(
            f"unknown events: {', '.join(unknown)}" if unknown else "name at least one event",
            code="webhook_event_unknown",
            details={"events": unknown, "allowed": list(EVENTS)},
        )
    if len(url) > URL_MAX:
        raise Unprocessable("the URL is too long", code="webhook_url_refused")
    try:
        # Resolved at creation in production, so that a mistake shows at once; checked again at each delivery.
        check_url(url, development=development, resolve=not development, timeout=RESOLVE_SECONDS)
    except UrlRefused as refused:
        raise Unprocessable(str(refused), code=UrlRefused.code) from None
    # Counted under the organization's row lock (lock order: service.domain.consent_lifecycle), so that two
    # creations at once cannot both take the last place; taken after the URL check, which may wait on DNS.
    lock_organization(session, org_id)
    count = session.scalar(select(func.count()).select_from(Webhook).where(Webhook.org_id == org_id)) or 0
    if count >= MAX_WEBHOOKS:
        raise Unprocessable(f"an organization has at most {MAX_WEBHOOKS} webhooks", code="too_many_webhooks")
    secret = new_secret()
    webhook = Webhook(
        org_id=org_id,
        url=url,
        events=",".join(sorted(set(events), key=EVENTS.index)),
        secret_ciphertext=protector.encrypt(secret),
    )
    session.add(webhook)
    session.flush()
    record_event(
        session,
        org_id=org_id,
        actor=actor,
        action="webhook.created",
        object_type="webhook",
        object_id=webhook.id,
        data={"events": webhook.events.split(",")},
    )
    return webhook, secret


def get_webhook(session: Session, *, org_id: str, webhook_id: str) -> Webhook:
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or webhook.org_id != org_id:
        raise NotFound("no such webhook")
    return webhook


def list_webhooks(session: Session, *, org_id: str, cursor: str | None, limit: int) -> Page[Webhook]:
    query = select(Webhook).where(Webhook.org_id == org_id)
    return page(session, query, Webhook, kind="webhooks", cursor=cursor, limit=limit)


def delete_webhook(session: Session, *, org_id: str, actor: str, webhook_id: str) -> None:
    """Delete it and what it still had queued; its delivered and dead records go with it."""
    webhook = get_webhook(session, org_id=org_id, webhook_id=webhook_id)
    session.execute(delete(OutboxMessage).where(OutboxMessage.webhook_id == webhook.id))
    session.delete(webhook)
    record_event(
        session, org_id=org_id, actor=actor, action="webhook.deleted", object_type="webhook", object_id=webhook_id
    )
    session.flush()


def list_deliveries(
    session: Session, *, org_id: str, webhook_id: str, cursor: str | None, limit: int
) -> Page[OutboxMessage]:
    webhook = get_webhook(session, org_id=org_id, webhook_id=webhook_id)
    query = select(OutboxMessage).where(OutboxMessage.webhook_id == webhook.id, OutboxMessage.channel == WEBHOOK)
    return page(session, query, OutboxMessage, kind="webhook_deliveries", cursor=cursor, limit=limit)


__all__ = ["EVENTS", "QUEUED", "create_webhook", "delete_webhook", "get_webhook", "list_deliveries", "list_webhooks"]
