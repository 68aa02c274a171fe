"""QR codes of guardian links, as PNG or SVG."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M


def _code(data: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=8, border=4)
    code.add_data(data)
    code.make(fit=True)
    return code


def qr_png(data: str) -> bytes:
    buffer = io.BytesIO()
    _code(data).make_image().save(buffer)
    return buffer.getvalue()


def qr_svg(data: str) -> bytes:
    buffer = io.BytesIO()
    # One <rect> per dark module with a white background: simple for any renderer or decoder.
    _code(data).make_image(image_factory=qrcode.image.svg.SvgFillImage).save(buffer)
    return buffer.getvalue()
