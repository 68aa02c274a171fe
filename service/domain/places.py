"""Where recognition devices may stand (Measures Art. 13): shared by the API schemas, the registry and the rules.

No devices in hotel rooms, public bathhouses, changing rooms, toilets or other places that may infringe
privacy; in public places only for public safety, with prominent signs and a set collection area.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from service.domain.wording import is_real_text, names_any
from service.errors import Unprocessable

PROHIBITED_LOCATION_TYPES = frozenset({"hotel_room", "public_bathhouse", "changing_room", "toilet"})
#: Public places (公共场所): open to anyone, as the public-places rules list them (hotels, shops, stations,
#: stadiums, hospitals' halls...), and streets and squares. ``other`` counts as public: a place nobody
#: classified gets the stricter reading (signs, a collection area, public-safety purposes only).
PUBLIC_LOCATION_TYPES = frozenset(
    {
        "retail_store",
        "bank_branch",
        "transport_hub",
        "street",
        "public_square",
        "hotel_lobby",
        "hospital",
        "stadium",
        "other",
    }
)
LOCATION_TYPES = (
    "building_entrance",
    "office",
    "school",
    "classroom",
    "residential_gate",
    "retail_store",
    "bank_branch",
    "transport_hub",
    "street",
    "public_square",
    "hotel_lobby",
    "hospital",
    "stadium",
    "other",
    *sorted(PROHIBITED_LOCATION_TYPES),
)
#: A device in a public place may verify only purposes of this category.
PUBLIC_PLACE_CATEGORY = "public_safety"

#: Private places named in words (R7): rooms people sleep, wash, undress or nurse in, and their room
#: numbers. English at a word start (an entry of several words also written as one), Chinese anywhere.
PRIVATE_PLACE_ENGLISH = (
    "hotel room", "guest room", "bed room", "room number", "dorm", "sleeping quarter",
    "bath", "shower", "sauna", "toilet", "lavator", "latrine", "urinal", "wc", "water closet",
    "rest room", "wash room", "powder room", "ladies room", "mens room", "men s room", "women s room",
    "changing room", "change room", "locker room", "dressing room", "fitting room", "nursing room", "lactation",
)  # fmt: skip
PRIVATE_PLACE_CHINESE = (
    "客房", "房间", "房間", "房号", "房號", "宿舍", "寝室", "寢室", "卧室", "臥室", "睡房",
    "卫生间", "衛生間", "洗手间", "洗手間", "厕", "廁", "茅房", "盥洗", "浴", "澡", "桑拿", "汗蒸",
    "更衣", "换衣", "換衣", "试衣", "試衣", "哺乳", "母婴室", "母嬰室",
)  # fmt: skip

SIGNAGE_FIELDS = ("posted_on", "text", "photo_sha256")
#: A place is named in few characters in Chinese (食堂, 东门); what signs say takes more.
PLACE_MIN_LENGTH = 2
SIGNAGE_TEXT_MIN_LENGTH = 4
_SHA256 = re.compile(r"[0-9a-f]{64}")


def is_public_place(location_type: str) -> bool:
    """Whether a device at ``location_type`` stands in a public place: derived, never declared."""
    return location_type in PUBLIC_LOCATION_TYPES


def names_private_place(text: str) -> bool:
    """Whether ``text`` names a private place (hotel room, bathroom, toilet, changing room, dormitory...),
    in English or Chinese, however spelled."""
    return names_any(text, english=PRIVATE_PLACE_ENGLISH, chinese=PRIVATE_PLACE_CHINESE)


def check_location(location_type: str, location_description: str | None, location: str | None = None) -> None:
    """422 ``prohibited_location`` for a private place, by type or named in the description or the free-text
    ``location``, whatever the type; 422 ``validation_error`` for ``other`` without a description."""
    if location_type in PROHIBITED_LOCATION_TYPES:
        raise Unprocessable(
            "face recognition devices may not be installed in hotel rooms, public bathhouses, changing rooms "
            "or toilets",
            code="prohibited_location",
            details={"location_type": [f"prohibited: {location_type}"]},
        )
    for field, text in (("location_description", location_description), ("location", location)):
        if text is not None and names_private_place(text):
            raise Unprocessable(
                "face recognition devices may not be installed in hotel rooms, bathrooms, toilets, changing "
                "rooms, dormitories or other places that may infringe privacy",
                code="prohibited_location",
                details={field: ["names a private place"]},
            )
    if location_type == "other" and not (
        location_description and is_real_text(location_description, min_length=PLACE_MIN_LENGTH)
    ):
        raise Unprocessable(
            "describe where a device of location_type other stands",
            details={"location_description": ["required for location_type other: where the device stands"]},
        )


def check_signage(
    *, public_place: bool, signage: dict[str, Any] | None, collection_area: str | None, today: date
) -> None:
    """The evidence a public place needs (R7): signs posted (when, what they say, a photo's SHA-256) and the
    area where faces are collected. 422 ``signage_required`` naming every missing or unfit field. Evidence
    given for a place that does not need it must be fit too: it is recorded as evidence."""
    problems: dict[str, Any] = {}
    if signage is None:
        if public_place:
            problems["signage"] = ["required in a public place: posted_on, text, photo_sha256"]
    else:
        fields: dict[str, list[str]] = {}
        posted_on, text, photo = (signage.get(name) for name in SIGNAGE_FIELDS)
        if posted_on is None:
            fields["posted_on"] = ["required: the day the signs were posted"]
        elif posted_on > today:
            fields["posted_on"] = ["in the future: signs must already be posted"]
        if not (text and is_real_text(text, min_length=SIGNAGE_TEXT_MIN_LENGTH)):
            fields["text"] = ["required: what the signs say (at least 4 characters)"]
        if not (photo and _SHA256.fullmatch(photo)):
            fields["photo_sha256"] = ["required: the SHA-256 of a photo of the signs, 64 lowercase hex digits"]
        if fields:
            problems["signage"] = fields
    if collection_area is None and public_place:
        problems["collection_area"] = ["required in a public place: the area where faces are collected"]
    elif collection_area is not None and not is_real_text(collection_area, min_length=PLACE_MIN_LENGTH):
        problems["collection_area"] = ["describe the area where faces are collected"]
    if problems:
        raise Unprocessable(
            "a device in a public place needs evidence of prominent signs and a set collection area",
            code="signage_required",
            details=problems,
        )
