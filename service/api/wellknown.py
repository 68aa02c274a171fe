"""Public keys that sign consent tokens."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from service.api import Blueprint
from service.keys.signing import key_set

blp = Blueprint("jwks", __name__, url_prefix="/.well-known", description="Public signing keys")


@blp.route("/jwks.json")
class Jwks(MethodView):
    @blp.response(200)
    def get(self) -> dict[str, Any]:
        """The JSON Web Key Set of the keys that sign consent tokens (current and previous)

        Public, no key needed. Offline verifiers pick the key by the token's `kid` and pin ES256; they
        should refresh this set when they meet an unknown `kid`, and never fetch keys a token names.
        """
        return key_set().jwks
