"""The organization's audit trail (R15)."""

from __future__ import annotations

from typing import Any

from flask import Response, stream_with_context
from flask.views import MethodView

from schemas.audit import AuditPageSchema
from schemas.common import PageQuerySchema
from schemas.reports import AuditExportQuerySchema
from service import db
from service.api import Blueprint
from service.domain.audit import list_events
from service.domain.audit_records import export_events
from service.keys.api_keys import current_caller

blp = Blueprint("audit", __name__, url_prefix="/v1/audit", description="Audit trail (R15)")


@blp.route("/events")
class AuditEvents(MethodView):
    @blp.authorized("admin")
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, AuditPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Read the audit trail in order, with its hash chain

        Events are numbered `seq` from 1 per organization; each `hash` is SHA-256 over the previous hash and
        the event. Page with `after` (the last `seq` read) and `limit` (at most 1000).
        """
        events = list_events(db.session(), org_id=current_caller().org_id, after=query["after"], limit=query["limit"])
        return {"events": events, "next_after": events[-1].seq if events else query["after"]}


@blp.route("/export")
class AuditExport(MethodView):
    @blp.authorized("admin")
    @blp.arguments(AuditExportQuerySchema, location="query")
    @blp.response(200, content_type="application/x-ndjson", description="JSON lines, or CSV with `format=csv`")
    def get(self, query: dict[str, Any]) -> Response:
        """Export the audit trail as records of processing (JSON lines or CSV)

        The twin of `consent-gate audit export`: every event of the organization since `since`, in chain
        order, with its hashes, for supervisors.
        """
        fmt = query["format"]
        chunks = export_events(db.session(), org_id=current_caller().org_id, since=query["since"], fmt=fmt)
        mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
        response = Response(stream_with_context(chunks), mimetype=mimetype)
        response.headers["Content-Disposition"] = f'attachment; filename="audit.{fmt}"'
        return response
