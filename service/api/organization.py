"""The caller's own organization: how people reach it."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from schemas.organizations import OrganizationPatchSchema, OrganizationSchema
from service import db
from service.api import Blueprint
from service.domain import organizations
from service.keys.api_keys import current_caller
from service.models import Organization

blp = Blueprint(
    "organization", __name__, url_prefix="/v1/organization", description="The organization people are told of (R1)"
)


@blp.route("")
class OwnOrganization(MethodView):
    @blp.authorized("admin")
    @blp.response(200, OrganizationSchema)
    def get(self) -> Organization:
        """Read the organization: its contact, protection officer and complaint channel

        These are what every guardian page and person's page shows as the personal-information handler:
        `name`, `contact`, `pipo` (the protection officer, or `null`) and `complaint_channel`. Scope: `admin`.
        """
        return organizations.get_organization(db.session(), current_caller().org_id)

    @blp.authorized("admin")
    @blp.arguments(OrganizationPatchSchema)
    @blp.response(200, OrganizationSchema)
    def patch(self, fields: dict[str, Any]) -> Organization:
        """Change how people reach the organization

        `contact`, `pipo` (the personal-information protection officer, `{name, contact}`) and
        `complaint_channel` are shown on every page for people from the next page view. Notices already
        published keep the digest of what they said; the change is audited.
        """
        caller = current_caller()
        session = db.session()
        org = organizations.update_organization(session, org_id=caller.org_id, actor=caller.actor, fields=fields)
        session.commit()
        return org
