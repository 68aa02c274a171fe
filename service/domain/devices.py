"""The device registry (R7): no devices in private places; public places only for public safety, with signs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.domain.places import PROHIBITED_LOCATION_TYPES
from service.errors import NotFound, Unprocessable
from service.models import Device, utcnow


def register_device(session: Session, *, org_id: str, actor: str, fields: dict[str, Any]) -> Device:
    if fields["location_type"] in PROHIBITED_LOCATION_TYPES:
        raise Unprocessable(
            "face recognition devices may not be installed in hotel rooms, public bathhouses, changing rooms "
            "or toilets",
            code="prohibited_location",
            details={"location_type": fields["location_type"]},
        )
    if fields.get("public_place") and not fields.get("signage_posted"):
        raise Unprocessable("a device in a public place needs prominent signs posted", code="signage_required")
    device = Device(
        org_id=org_id,
        name=fields["name"],
        location_type=fields["location_type"],
        location=fields.get("location", ""),
        public_place=fields.get("public_place", False),
        signage_posted=fields.get("signage_posted", False),
    )
    session.add(device)
    session.flush()
    record_event(
        session,
        org_id=org_id,
        actor=actor,
        action="device.registered",
        object_type="device",
        object_id=device.id,
        data={
            "location_type": device.location_type,
            "public_place": device.public_place,
            "signage_posted": device.signage_posted,
        },
    )
    return device


def get_device(session: Session, *, org_id: str, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None or device.org_id != org_id:
        raise NotFound(f"device {device_id} does not exist")
    return device


def list_devices(session: Session, *, org_id: str) -> list[Device]:
    return list(session.scalars(select(Device).where(Device.org_id == org_id).order_by(Device.created_at)))


def deactivate_device(session: Session, *, org_id: str, actor: str, device_id: str) -> Device:
    device = get_device(session, org_id=org_id, device_id=device_id)
    if device.active:
        device.active = False
        device.deactivated_at = utcnow()
        session.flush()
        record_event(
            session,
            org_id=org_id,
            actor=actor,
            action="device.deactivated",
            object_type="device",
            object_id=device.id,
            data={},
        )
    return device
