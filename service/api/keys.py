"""The organization's API keys, managed by its admin keys."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from schemas.common import ListQuerySchema
from schemas.keys import ApiKeyCreatedSchema, ApiKeyCreateSchema, ApiKeyPageSchema
from service import db
from service.api import Blueprint
from service.domain import api_keys
from service.domain.pages import Page
from service.keys.api_keys import current_caller, key_cache
from service.models import ApiKey

blp = Blueprint("keys", __name__, url_prefix="/v1/keys", description="API keys of your organization")


@blp.route("")
class ApiKeys(MethodView):
    @blp.authorized("admin")
    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, ApiKeyPageSchema)
    def get(self, query: dict[str, Any]) -> Page[ApiKey]:
        """List your organization's API keys

        Revoked keys included; never a key's secret nor its hash. `last_used_at` is written at most once a
        minute per key. Oldest first; page with `cursor` (the `next_cursor` of the last page) and `limit` (at
        most 1000, 100 by default).
        """
        return api_keys.list_api_keys(
            db.session(), org_id=current_caller().org_id, cursor=query["cursor"], limit=query["limit"]
        )

    @blp.authorized("admin")
    @blp.arguments(ApiKeyCreateSchema)
    @blp.response(201, ApiKeyCreatedSchema)
    def post(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Create an API key

        The answer carries the key itself, once: it is stored only as a hash. An admin key may create keys of
        any scope, `admin` included (admin is the top scope). The name may hold no control or format characters.
        An organization holds at most 100 keys that are not revoked: beyond, 422 `too_many_keys` (revoke one it
        no longer uses). The new key's `created_by` is the key that created it. Audited as `api_key.created`.
        """
        caller = current_caller()
        session = db.session()
        api_key, secret = api_keys.new_api_key(
            session,
            org_id=caller.org_id,
            actor=caller.actor,
            name=fields["name"],
            scopes=fields["scopes"],
            created_by=caller.key_id,
        )
        session.commit()
        return {"id": api_key.id, "key": secret, "name": api_key.name, "scopes": api_key.scope_list}


@blp.route("/<string:key_id>")
class ApiKeyById(MethodView):
    @blp.authorized("admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, key_id: str) -> None:
        """Revoke an API key

        The key answers 401 at once on this instance and within `API_KEY_CACHE_SECONDS` (5 s) on every other.
        A key may revoke itself (a leaked key). Revoking a revoked key answers 204 again and changes nothing;
        another organization's key answers 404. Audited as `api_key.revoked`.
        """
        caller = current_caller()
        session = db.session()
        api_keys.revoke_api_key(session, org_id=caller.org_id, key_id=key_id, actor=caller.actor)
        session.commit()
        key_cache().forget_key(key_id)
