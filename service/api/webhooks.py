"""Webhooks: the organization's systems told of events as they happen (Standard Webhooks)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from schemas.common import ListQuerySchema
from schemas.webhooks import (
    WebhookCreatedSchema,
    WebhookCreateSchema,
    WebhookDeliveryPageSchema,
    WebhookPageSchema,
    WebhookSchema,
)
from service import db
from service.api import Blueprint
from service.config import is_development
from service.domain import webhooks
from service.domain.pages import Page
from service.keys.api_keys import current_caller
from service.models import OutboxMessage, Webhook

blp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks", description="Webhooks of your organization")


@blp.route("")
class Webhooks(MethodView):
    @blp.authorized("admin")
    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, WebhookPageSchema)
    def get(self, query: dict[str, Any]) -> Page[Webhook]:
        """List your organization's webhooks

        Oldest first; page with `cursor` and `limit` (at most 1000, 100 by default). Never a secret.
        """
        return webhooks.list_webhooks(
            db.session(), org_id=current_caller().org_id, cursor=query["cursor"], limit=query["limit"]
        )

    @blp.authorized("admin")
    @blp.arguments(WebhookCreateSchema)
    @blp.response(201, WebhookCreatedSchema)
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
    def post(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Create a webhook

        Each event named in `events` is POSTed to `url` as it happens, signed per Standard Webhooks
        (`webhook-id`, `webhook-timestamp`, `webhook-signature`; see the README, "Webhooks"), at least once,
        retried with backoff. The answer carries the signing `secret` once. In production `url` must be
        https and resolve to public addresses only (422 `webhook_url_refused`); an event not listed answers
        422 `webhook_event_unknown`; at most 20 webhooks (422 `too_many_webhooks`). Audited as
        `webhook.created`.
        """
        caller = current_caller()
        session = db.session()
        webhook, secret = webhooks.create_webhook(
            session,
            org_id=caller.org_id,
            actor=caller.actor,
            protector=current_app.extensions["consent_gate.protector"],
            url=fields["url"],
            events=fields["events"],
            development=is_development(current_app.config),
        )
        session.commit()
        return {"id": webhook.id, "secret": secret, "url": webhook.url, "events": webhook.events.split(",")}


@blp.route("/<string:webhook_id>")
class WebhookById(MethodView):
    @blp.authorized("admin")
    @blp.response(200, WebhookSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, webhook_id: str) -> Webhook:
        """Read one webhook

        Its URL and events; never its secret (shown once, when it was created). Another organization's
        webhook answers 404.
        """
        return webhooks.get_webhook(db.session(), org_id=current_caller().org_id, webhook_id=webhook_id)

    @blp.authorized("admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, webhook_id: str) -> None:
        """Delete a webhook

        Nothing more is sent to it, what it still had queued included; its deliveries' records go too.
        Audited as `webhook.deleted`.
        """
        caller = current_caller()
        session = db.session()
        webhooks.delete_webhook(session, org_id=caller.org_id, actor=caller.actor, webhook_id=webhook_id)
        session.commit()


@blp.route("/<string:webhook_id>/deliveries")
class WebhookDeliveries(MethodView):
    @blp.authorized("admin")
    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, WebhookDeliveryPageSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, query: dict[str, Any], webhook_id: str) -> Page[OutboxMessage]:
        """List a webhook's deliveries, oldest first

        Each one's event type, `status` (`queued`, `sent`, `failed` after its last attempt), attempts, the
        receiver's last status code and the times; never the body. Page with `cursor` and `limit`.
        """
        return webhooks.list_deliveries(
            db.session(),
            org_id=current_caller().org_id,
            webhook_id=webhook_id,
            cursor=query["cursor"],
            limit=query["limit"],
        )
