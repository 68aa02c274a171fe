"""Helpers for guardian-flow tests: a child with purposes, and a form-filling guardian."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from flask.testing import FlaskClient

from tests.conftest import Tenant


def setup_child(tenant: Tenant, *, age_years: int = 9) -> dict[str, Any]:
    tenant.purpose("door_access")
    tenant.purpose(
        "canteen_payment",
        category="payment",
        name="Canteen payment",
        transmits_face_data=True,
        alternative="Pay with the canteen card",
    )
    return tenant.subject(age_years=age_years)


def link_path(url: str) -> str:
    return urlparse(url).path


def code_from(message: dict[str, Any]) -> str:
    found = re.search(r"\b(\d{6})\b", message["body"])
    assert found, message
    return found.group(1)


def url_from(message: dict[str, Any]) -> str:
    found = re.search(r"https?://\S+/g/[A-Za-z0-9_-]+", message["body"])
    assert found, message
    return found.group(0)


@dataclass
class GuardianBrowser:
    """Drives the guardian pages the way a phone without JavaScript would: GET, then POST the form."""

    client: FlaskClient
    path: str

    def open(self, query: str = "") -> Any:
        return self.client.get(self.path + query)

    def csrf(self) -> str:
        page = self.open()
        found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.get_data(as_text=True))
        assert found, page.get_data(as_text=True)
        return found.group(1)

    def submit(self, **form: Any) -> Any:
        data = {"csrf_token": self.csrf(), **form}
        return self.client.post(self.path, data=data)
