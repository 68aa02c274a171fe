"""The QR codes of approval links, decoded back from real PNG and SVG images."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import zxingcpp
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    from tests.support import GuardianKit, Tenant


def decode_png(data: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    assert len(results) == 1
    return str(results[0].text)


def rasterize_svg(data: bytes, scale: float = 10.0) -> Image.Image:
    """Draw the SVG's rectangles (the QR modules) onto a white bitmap."""
    root = ET.fromstring(data)  # noqa: S314 (our own SVG)

    def mm(value: str) -> float:
        return float(re.sub(r"[a-z%]+$", "", value))

    size = mm(root.attrib["width"])
    image = Image.new("L", (int(size * scale), int(size * scale)), 255)
    draw = ImageDraw.Draw(image)
    for rect in root.iter():
        if not rect.tag.endswith("rect") or rect.attrib.get("fill") == "white":
            continue
        x, y = mm(rect.attrib["x"]) * scale, mm(rect.attrib["y"]) * scale
        w, h = mm(rect.attrib["width"]) * scale, mm(rect.attrib["height"]) * scale
        draw.rectangle([x, y, x + w - 1, y + h - 1], fill=0)
    return image


def test_png_and_svg_qr_codes_decode_to_the_approve_url(tenant: Tenant, guardian: GuardianKit) -> None:
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"], delivery="qr").json
    png = tenant.get(f"/v1/guardian-requests/{created['id']}/qr.png", scope="consents")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.data.startswith(b"\x89PNG")
    assert decode_png(png.data) == created["approve_url"]
    svg = tenant.get(f"/v1/guardian-requests/{created['id']}/qr.svg", scope="consents")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    results = zxingcpp.read_barcodes(rasterize_svg(svg.data))
    assert [r.text for r in results] == [created["approve_url"]]


def test_qr_is_refused_once_the_request_is_decided_or_erased(tenant: Tenant, guardian: GuardianKit) -> None:
    child = guardian.setup_child(tenant)
    created = tenant.guardian_request(child["id"], ["door_access"], delivery="qr").json
    tenant.delete(f"/v1/subjects/{child['id']}")
    polled = tenant.get(f"/v1/guardian-requests/{created['id']}", scope="consents").json
    assert polled["status"] == "expired" and polled["approve_url"] is None and polled["qr_png_url"] is None
    assert {c["status"] for c in polled["consents"]} == {"revoked"}
    for kind in ("png", "svg"):
        refused = tenant.get(f"/v1/guardian-requests/{created['id']}/qr.{kind}", scope="consents")
        assert refused.status_code == 409 and refused.json["code"] == "request_not_pending"
