"""What leaves the service after a commit: SMS and webhook deliveries (the outbox), and the webhooks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base
from service.models.types import UTCDateTime, list_order_index, new_id, utcnow


class OutboxMessage(Base):
    """One message to send after the commit that wrote it: an SMS or a webhook delivery.

    Written in the transaction of the change that causes it; a dispatcher claims it (``claimed_by`` until
    ``lease_until``), sends it with no transaction open, and settles it ``sent`` or, after the last attempt
    or a permanent refusal, ``failed``. The body (``payload_ciphertext``: the number, the text, a link or a
    code, encrypted with DATA_KEY) is erased once the message is settled, and when its subject is erased.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next_attempt", "status", "next_attempt_at"),
        Index("ix_outbox_webhook_created_id", "webhook_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    #: sms, webhook, or job (work that fans out into messages: ``service.outbox.jobs``)
    channel: Mapped[str] = mapped_column(String(16))
    #: the SMS's kind (link, code, withdrawal, reconsent, access), the webhook's event type, or the job's
    kind: Mapped[str] = mapped_column(String(40))
    #: whom an SMS reaches, so that their erasure removes what is still queued to them
    subject_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    request_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    sms_message_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    webhook_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    #: queued, sent or failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    payload_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Webhook(Base):
    """An endpoint of the organization's systems told of events (Standard Webhooks)."""

    __tablename__ = "webhooks"
    __table_args__ = (list_order_index("webhooks"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    #: the event types, comma-separated
    events: Mapped[str] = mapped_column(Text)
    #: the signing secret (``whsec_…``), encrypted with DATA_KEY: it must be read back to sign
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def event_list(self) -> list[str]:
        return self.events.split(",")
