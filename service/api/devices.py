"""The device registry (R7)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from schemas.common import ListQuerySchema
from schemas.devices import DeviceCreateSchema, DevicePageSchema, DeviceSchema
from service import db
from service.api import Blueprint
from service.domain import devices
from service.domain.pages import Page
from service.keys.api_keys import current_caller
from service.models import Device

blp = Blueprint("devices", __name__, url_prefix="/v1/devices", description="Recognition devices (R7)")


@blp.route("")
class Devices(MethodView):
    @blp.authorized("admin")
    @blp.arguments(ListQuerySchema, location="query")
    @blp.response(200, DevicePageSchema)
    def get(self, query: dict[str, Any]) -> Page[Device]:
        """List the organization's devices

        Active and deactivated, oldest first, each with its place, whether it is a public place (derived
        from `location_type`), its signage and collection area. Scope: `admin`. Page with `cursor` (the
        `next_cursor` of the last page) and `limit` (at most 1000, 100 by default).
        """
        return devices.list_devices(
            db.session(), org_id=current_caller().org_id, cursor=query["cursor"], limit=query["limit"]
        )

    @blp.authorized("admin")
    @blp.arguments(DeviceCreateSchema)
    @blp.response(201, DeviceSchema)
    def post(self, fields: dict[str, Any]) -> Device:
        """Register a recognition device

        Hotel rooms, public bathhouses, changing rooms and toilets, and a `location_description` naming a
        private place, answer 422 `prohibited_location`. `public_place` is derived from `location_type`
        (sending it answers 422); a public place without `signage` evidence and a `collection_area` answers
        422 `signage_required`, naming what is missing.
        """
        caller = current_caller()
        session = db.session()
        device = devices.register_device(session, org_id=caller.org_id, actor=caller.actor, fields=fields)
        session.commit()
        return device


@blp.route("/<string:device_id>")
class DeviceById(MethodView):
    @blp.authorized("admin")
    @blp.response(200, DeviceSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, device_id: str) -> Device:
        """Read a device

        Send its `id` as `device_id` with each verification made through it. Another organization's id
        answers 404 `not_found`.
        """
        return devices.get_device(db.session(), org_id=current_caller().org_id, device_id=device_id)


@blp.route("/<string:device_id>/deactivate")
class DeviceDeactivation(MethodView):
    @blp.authorized("admin")
    @blp.response(200, DeviceSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, device_id: str) -> Device:
        """Deactivate a device: verification through it denies `device_unknown` from now on

        The device stays on record (`active: false`, `deactivated_at`) for the compliance report and the
        filing materials; deactivating it again changes nothing.
        """
        caller = current_caller()
        session = db.session()
        device = devices.deactivate_device(session, org_id=caller.org_id, actor=caller.actor, device_id=device_id)
        session.commit()
        return device
