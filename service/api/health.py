"""Health checks for load balancers and orchestrators."""

from __future__ import annotations

import logging
from typing import Any

from flask.views import MethodView
from sqlalchemy import text

from service import db
from service.api import Blueprint
from service.errors import error_body

log = logging.getLogger(__name__)

blp = Blueprint("health", __name__, description="Operations")


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200)
    def get(self) -> dict[str, Any]:
        """The process is up

        For liveness probes: answers without touching the database. Public.
        """
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200)
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def get(self) -> Any:
        """The database answers

        For readiness probes and load balancers: 200 when a query succeeds, else 503
        `database_unavailable`. Public.
        """
        try:
            db.session().execute(text("SELECT 1"))
        except Exception:
            log.warning("readiness check failed: database unreachable")
            db.session().rollback()
            return error_body(503, "database_unavailable", "database unreachable"), 503
        return {"status": "ok"}
