"""The spec people use (issue 14): every operation described, with examples its schemas load and its error
codes, each one of the catalogue; the catalogue itself in step with the code, the README and the spec."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import marshmallow as ma
import pytest
from flask import Flask

from service.api.documentation import DEFAULT_CODES, operation_key
from service.api.examples import OPERATIONS
from service.error_catalogue import CATALOGUE, catalogue_markdown
from service.errors import ERROR_CODES

if TYPE_CHECKING:
    from tests.support import Tenant

ROOT = Path(__file__).resolve().parent.parent
METHODS = {"get", "post", "put", "patch", "delete"}
#: Answers that are not text: the spec shows no example of them.
BINARY = {"image/png", "text/html"}


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = spec["components"][kind][name]
    return node


def schema_of(app: Flask, spec_schema: dict[str, Any]) -> tuple[ma.Schema, bool]:
    """The marshmallow schema behind a spec schema (``$ref`` or an array of one), and whether it is a list."""
    many = spec_schema.get("type") == "array"
    name = (spec_schema["items"] if many else spec_schema)["$ref"].rsplit("/", 1)[1]
    refs = app.extensions["consent_gate.api"].ma_plugin.converter.refs
    schema_class = next(key[0] for key, ref in refs.items() if ref == name)
    return schema_class(), many


def load(schema: ma.Schema, many: bool, example: Any) -> None:
    """Load ``example`` through ``schema``: raises ``ValidationError`` for an example it refuses."""
    schema.load(example, many=many)


def codes_of(spec: dict[str, Any], response: dict[str, Any]) -> list[str]:
    examples = resolve(spec, response).get("content", {}).get("application/json", {}).get("examples", {})
    return [example["value"]["code"] for example in examples.values()]


@pytest.fixture()
def spec(app: Flask) -> dict[str, Any]:
    return copy.deepcopy(app.extensions["consent_gate.api"].spec.to_dict())


def test_every_operation_has_a_summary_a_description_and_an_entry(spec: dict[str, Any]) -> None:
    keys = set()
    for method, path, operation in operations(spec):
        keys.add(operation_key(method, path))
        assert operation.get("summary"), (method, path)
        assert operation.get("description"), f"{method.upper()} {path}: give its docstring a description"
        assert operation_key(method, path) in OPERATIONS, f"add {operation_key(method, path)!r} to OPERATIONS"
    assert set(OPERATIONS) <= keys, f"entries for no operation: {set(OPERATIONS) - keys}"


def test_every_request_example_loads_through_its_schema(app: Flask, spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        if "requestBody" not in operation:
            continue
        body = operation["requestBody"]["content"]["application/json"]
        assert "example" in body, f"{method.upper()} {path}: no request example"
        schema, many = schema_of(app, body["schema"])
        try:
            load(schema, many, body["example"])
        except ma.ValidationError as error:
            pytest.fail(f"{method.upper()} {path}: the request example does not load: {error.messages}")


def test_every_success_answer_has_an_example_its_schema_loads(app: Flask, spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            if not status.startswith("2"):
                continue
            for content_type, media in resolve(spec, response).get("content", {}).items():
                if content_type in BINARY:
                    continue
                where = f"{method.upper()} {path} {status} {content_type}"
                assert "example" in media, f"{where}: no example"
                if content_type != "application/json":
                    assert isinstance(media["example"], str) and media["example"], where
                    continue
                if "$ref" not in media.get("schema", {}) and "items" not in media.get("schema", {}):
                    assert isinstance(media["example"], dict), where  # a free-form object (JWKS, health)
                    continue
                schema, many = schema_of(app, media["schema"])
                try:
                    load(schema, many, media["example"])
                except ma.ValidationError as error:
                    pytest.fail(f"{where}: the example does not load: {error.messages}")


def test_every_error_status_names_its_codes_with_real_bodies(app: Flask, spec: dict[str, Any]) -> None:
    from service.errors import ErrorSchema

    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            if status == "default" or status.startswith("2"):
                continue
            where = f"{method.upper()} {path} {status}"
            media = resolve(spec, response)["content"]["application/json"]
            if media["schema"].get("$ref", "").endswith("/Error"):
                codes = codes_of(spec, response)
                assert codes, f"{where}: no error code documented"
                for example in media["examples"].values():
                    body = example["value"]
                    assert body["code"] in CATALOGUE, f"{where}: unknown code {body['code']}"
                    assert body["status"] == int(status), f"{where}: {body['code']} answers {body['status']}"
                    ErrorSchema().load(body)
            else:  # an answer of its own shape (the verification's 503 deny)
                assert "example" in media, where


def test_an_operation_documents_each_code_it_declares(spec: dict[str, Any]) -> None:
    for method, path, operation in operations(spec):
        documented = {code for response in operation["responses"].values() for code in codes_of(spec, response)}
        declared = set(OPERATIONS[operation_key(method, path)].errors)
        assert declared <= documented, (method, path, declared - documented)
        for status in operation["responses"]:
            if status.isdigit() and int(status) in DEFAULT_CODES:
                assert set(DEFAULT_CODES[int(status)]) <= documented, (method, path, status)


def test_the_shared_error_responses_show_the_codes_they_stand_for(spec: dict[str, Any]) -> None:
    assert codes_of(spec, {"$ref": "#/components/responses/UNAUTHORIZED"}) == ["unauthorized"]
    assert codes_of(spec, {"$ref": "#/components/responses/FORBIDDEN"}) == ["forbidden"]
    assert codes_of(spec, {"$ref": "#/components/responses/NOT_FOUND"}) == ["not_found"]
    assert codes_of(spec, {"$ref": "#/components/responses/BAD_REQUEST"}) == ["malformed_json", "json_too_deep"]
    assert codes_of(spec, {"$ref": "#/components/responses/DEFAULT_ERROR"}) == ["internal_error"]
    consents = spec["paths"]["/v1/consents"]["post"]["responses"]
    assert "guardian_required" in codes_of(spec, consents["409"])
    purposes = spec["paths"]["/v1/purposes"]["post"]["responses"]
    assert {"validation_error", "prohibited_analysis", "missing_locale"} <= set(codes_of(spec, purposes["422"]))


def test_the_catalogue_is_every_error_code() -> None:
    assert set(CATALOGUE) == set(ERROR_CODES), set(CATALOGUE) ^ set(ERROR_CODES)
    assert len(ERROR_CODES) == len(set(ERROR_CODES))


def test_every_code_the_code_answers_has_the_status_the_catalogue_gives() -> None:
    """Classes naming a ``code`` and a ``status``, as the domain declares its errors."""
    for source in (ROOT / "service").rglob("*.py"):
        text = source.read_text()
        for status, code in re.findall(r'status = (\d{3})\n\s+code = "([a-z_]+)"', text):
            assert CATALOGUE[code].status == int(status), (source.name, code)


def test_the_readme_and_the_spec_list_the_catalogue(spec: dict[str, Any]) -> None:
    table = catalogue_markdown()
    assert table in (ROOT / "README.md").read_text(), "README.md: paste service.error_catalogue.catalogue_markdown()"
    assert table in spec["info"]["description"]


@pytest.mark.committed
def test_request_examples_succeed_against_the_app(tenant: Tenant) -> None:
    """The examples are realistic: sent as they are (ids replaced by this run's), each answers its success."""

    def send(key: str, scope: str, path: str | None = None, **replace: Any) -> Any:
        method, template = key.split(" ", 1)
        entry = OPERATIONS[key]
        body = {**entry.request, **replace} if entry.request is not None else None
        response = tenant.client.open(path or template, method=method, json=body, headers=tenant.headers(scope))
        assert 200 <= response.status_code < 300, (key, response.json)
        if isinstance(entry.response, dict):
            assert set(response.json) == set(entry.response), (key, set(response.json) ^ set(entry.response))
        return response.json

    send("PATCH /v1/organization", "admin")
    send("POST /v1/purposes", "admin")
    send("POST /v1/purposes/{code}/notices", "admin", "/v1/purposes/door_access/notices")
    send("POST /v1/assessments", "admin")
    send("POST /v1/incidents", "admin")
    adult = send("POST /v1/subjects", "consents")
    consent = send("POST /v1/consents", "consents", subject_id=adult["id"])
    assert consent["status"] == "active"
    answer = send("POST /v1/verifications", "verify", token=consent["token"])
    assert answer["decision"] == "allow"
    send("POST /v1/consents/{consent_id}/revoke", "consents", f"/v1/consents/{consent['id']}/revoke")
    child = send("POST /v1/subjects", "consents", external_ref="pupil-2031-07", birth_date="2016-05-20")
    send("POST /v1/guardian-requests", "consents", subject_id=child["id"])
    send("POST /v1/devices", "admin")
    send("POST /v1/filings", "admin")
