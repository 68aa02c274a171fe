"""Where recognition devices may stand (Measures Art. 13): shared by the API schemas and the rules."""

from __future__ import annotations

PROHIBITED_LOCATION_TYPES = frozenset({"hotel_room", "public_bathhouse", "changing_room", "toilet"})
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
