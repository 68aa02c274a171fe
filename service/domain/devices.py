"""The device registry (R7): no devices in private places; public places only for public safety, with signs."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain.audit import record_event
from service.domain.pages import Page, page
from service.domain.places import check_location, check_signage, is_public_place
from service.domain.subjects import CHINA_TIME
from service.errors import NotFound
from service.models import Device, utcnow


def register_device(
    session: Session, *, org_id: str, actor: str, fields: dict[str, Any], today: date | None = None
) -> Device:
    """Register a device where one may stand (R7): 422 ``prohibited_location`` for a private place, 422
    ``signage_required`` for a public place without the evidence of signs and a collection area. Whether
    it is a public place is derived from ``location_type``."""
    location_type = fields["location_type"]
    description = fields.get("location_description")
    check_location(location_type, description, fields.get("location"))
    public_place = is_public_place(location_type)
    signage = fields.get("signage")
    check_signage(
        public_place=public_place,
        signage=signage,
        collection_area=fields.get("collection_area"),
        today=today or utcnow().astimezone(CHINA_TIME).date(),  # signs are posted on China's calendar
    )
    device = Device(
        org_id=org_id,
        name=fields["name"],
        location_type=location_type,
        location=fields.get("location", ""),
        location_description=description,
        public_place=public_place,
        signage_posted_on=signage["posted_on"] if signage else None,
        signage_text=signage["text"] if signage else None,
        signage_photo_sha256=signage["photo_sha256"] if signage else None,
        collection_area=fields.get("collection_area"),
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
            "signage_posted_on": device.signage_posted_on.isoformat() if device.signage_posted_on else None,
            "signage_photo_sha256": device.signage_photo_sha256,
        },
    )
    return device


def get_device(session: Session, *, org_id: str, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None or device.org_id != org_id:
        raise NotFound(f"device {device_id} does not exist")
    return device


def list_devices(session: Session, *, org_id: str, cursor: str | None, limit: int) -> Page[Device]:
    """The organization's devices, oldest first, deactivated ones included."""
    query = select(Device).where(Device.org_id == org_id)
    return page(session, query, Device, kind="devices", cursor=cursor, limit=limit)


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
