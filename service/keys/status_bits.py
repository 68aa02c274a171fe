"""The Token Status List bit array: pure functions shared by the server and the offline verifier."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable


def encode_bits(invalid: Iterable[int], size: int) -> str:
    """Bit ``i`` is bit ``i % 8`` (least significant first) of byte ``i // 8``; zlib, then base64url."""
    raw = bytearray(size // 8)
    for index in invalid:
        raw[index // 8] |= 1 << (index % 8)
    return base64.urlsafe_b64encode(zlib.compress(bytes(raw), 9)).rstrip(b"=").decode()


def decode_bits(lst: str) -> bytes:
    return zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))


def bit_at(raw: bytes, index: int) -> int:
    return (raw[index // 8] >> (index % 8)) & 1
