"""The verification limit cannot be dodged: counted once, by the key's id, a batch by its items (issue 11)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from limits import parse

from service.limits import json_depth
from service.limits.keys import LocalWindows

if TYPE_CHECKING:
    from tests.support import Race, Tenant


@pytest.fixture(params=["uncached key", "cached key"])
def five_a_minute(request: pytest.FixtureRequest, app_config: dict[str, Any]) -> str:
    app_config.update(RATE_LIMIT_VERIFY="5/minute", RATE_LIMIT_PREFIX=f"cg-test-{uuid.uuid4().hex}")
    # A key read from the database each time, or from the key cache: both must count the same.
    app_config["API_KEY_CACHE_SECONDS"] = 300 if request.param == "cached key" else 0
    return str(request.param)


def _verify(tenant: Tenant, authorization: str, body: Any, path: str = "/v1/verifications") -> Any:
    return tenant.client.post(path, json=body, headers={"Authorization": authorization})


@pytest.mark.committed
def test_reworded_headers_share_one_window(five_a_minute: str, tenant: Tenant) -> None:
    tenant.purpose()
    key = tenant.keys["verify"]
    body = {"purpose": "door_access", "subject_id": tenant.subject()["id"]}
    spellings = [f"Bearer {key}", f"bearer {key}", f"Bearer   {key}", f"BEARER {key}", f"Bearer {key}  "]
    answers = [_verify(tenant, spelling, body) for spelling in spellings]
    assert [a.status_code for a in answers] == [200] * 5, five_a_minute
    remaining = [int(a.headers["X-RateLimit-Remaining"]) for a in answers]
    assert remaining == [4, 3, 2, 1, 0]  # each request counted once
    for spelling in (f"Bearer {key}", f"bearer\t{key}", f"bEaReR {key}"):
        refused = _verify(tenant, spelling, body)
        assert refused.status_code in (401, 429), spelling
        if refused.status_code == 429:
            assert refused.json["code"] == "rate_limited" and int(refused.headers["Retry-After"]) > 0


@pytest.mark.committed
def test_a_batch_counts_its_items(five_a_minute: str, tenant: Tenant) -> None:
    tenant.purpose()
    key = f"Bearer {tenant.keys['verify']}"
    item = {"purpose": "door_access", "subject_id": tenant.subject()["id"]}
    assert _verify(tenant, key, {"items": [item] * 4}, "/v1/verifications/batch").status_code == 200
    assert _verify(tenant, key, item).status_code == 200
    over = _verify(tenant, key, {"items": [item] * 2}, "/v1/verifications/batch")
    assert over.status_code == 429 and over.json["code"] == "rate_limited"


def test_many_callers_never_reset_the_others() -> None:
    """A table full of callers drops past windows, then counts newcomers together: nobody starts afresh."""
    now = [0.0]
    windows = LocalWindows(parse("3/minute"), clock=lambda: now[0], max_callers=3)
    for caller in ("a", "b", "c"):
        assert windows.count(caller, 3)[0]
        assert not windows.count(caller)[0]
    for newcomer in ("d", "e", "f", "g"):
        windows.count(newcomer)
    assert not windows.count("a")[0] and not windows.count("b")[0]  # still over their limit
    assert not windows.count("h")[0]  # the overflow window is spent by the crowd
    now[0] = 61.0  # next window: past entries make room again
    assert windows.count("h")[0] and windows.count("a")[0]


@pytest.mark.parametrize("path", ["/v1/verifications", "/v1/verifications/batch"])
@pytest.mark.parametrize("authorized", [False, True])
def test_deep_json_never_answers_500(tenant: Tenant, path: str, authorized: bool) -> None:
    """60 KB of nested brackets once made a parser raise RecursionError (a 500 page): refused before parsing."""
    headers = {"Content-Type": "application/json"}
    if authorized:
        headers["Authorization"] = f"Bearer {tenant.keys['verify']}"
    for body in (b"[" * 60_000, b'{"a":' * 12_000 + b"1" + b"}" * 12_000, b"[" * 40 + b"]" * 40):
        answer = tenant.client.post(path, data=body, headers=headers)
        assert answer.status_code < 500, (len(body), answer.status_code)
        assert answer.json["code"] in {"json_too_deep", "payload_too_large"}


@pytest.fixture(params=[0, 1])
def proxy_hops(request: pytest.FixtureRequest, app_config: dict[str, Any]) -> int:
    app_config.update(
        TRUSTED_PROXY_HOPS=request.param, RATE_LIMIT_GUARDIAN="2/minute", RATE_LIMIT_PREFIX=f"cg-{uuid.uuid4().hex}"
    )
    return int(request.param)


@pytest.mark.committed
def test_client_addresses_come_from_trusted_proxies_only(proxy_hops: int, tenant: Tenant) -> None:
    """Without a trusted proxy, a forged X-Forwarded-For gets no fresh allowance; behind one, clients count apart."""
    statuses = [
        tenant.client.get("/g/" + "x" * 43, headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code for n in range(4)
    ]
    if proxy_hops == 0:
        assert statuses == [404, 404, 429, 429]  # one client, however it labels itself
    else:
        assert statuses == [404, 404, 404, 404]  # four clients behind our proxy
        same = [tenant.client.get("/g/" + "x" * 43, headers={"X-Forwarded-For": "203.0.113.9"}) for _ in range(3)]
        assert [r.status_code for r in same] == [404, 404, 429]


def test_numeric_settings_come_from_the_environment() -> None:
    from service.config import from_environment

    settings = from_environment({"CONSENT_GATE_SMS_DAILY_LIMIT": "20", "CONSENT_GATE_TRUSTED_PROXY_HOPS": "1"})
    assert (settings["SMS_DAILY_LIMIT"], settings["TRUSTED_PROXY_HOPS"]) == (20, 1)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 33 + b'"' + b'\\"' * 1_000_000,
        b"[" * 33 + b'"' + b"\\\n" * 1_000_000,
        b'"\\' * 1_000_000,
        b'"a' * 1_000_000,
        b'"[[[[",' * 300_000,
    ],
    ids=["unclosed escapes", "escaped newlines", "quote backslash", "many strings", "brackets in strings"],
)
def test_measuring_depth_is_linear_on_any_body(body: bytes, race: Race) -> None:
    """The depth of a 2 MB body is measured before the key is checked: a measure that backtracked on
    unclosed strings would take hours on these (a minute for 64 KB), freezing a worker for anyone."""
    found: list[int] = []
    race(lambda: found.append(json_depth(body)), timeout=120)  # fails the test if it has not returned
    assert len(found) == 1 and found[0] <= 34


@pytest.mark.committed
def test_threads_at_once_cannot_overspend_the_allowance(five_a_minute: str, tenant: Tenant, race: Race) -> None:
    """Eight requests released together, each spelling the key its own way, three of them batches of two:
    five allowed units, and never more answered than fit, every round."""
    tenant.purpose()
    key = tenant.keys["verify"]
    item = {"purpose": "door_access", "subject_id": tenant.subject()["id"]}
    spellings = [f"Bearer {key}", f"bearer {key}", f"Bearer   {key}", f"BEARER {key}"]

    def single(spelling: str) -> Callable[[], int]:
        return lambda: int(_verify(tenant, spelling, item).status_code)

    def pair(spelling: str) -> Callable[[], int]:
        return lambda: int(_verify(tenant, spelling, {"items": [item, item]}, "/v1/verifications/batch").status_code)

    for round_ in range(3):
        tenant.client.application.extensions["consent_gate.verify_limit"]._local = LocalWindows(parse("5/minute"))
        calls = [single(spellings[n % 4]) for n in range(5)] + [pair(spellings[n % 4]) for n in range(3)]
        [statuses] = race(*calls)
        assert set(statuses) <= {200, 429}, statuses
        singles, pairs = statuses[:5], statuses[5:]
        spent = singles.count(200) + 2 * pairs.count(200)
        assert spent <= 5, (round_, statuses)  # never more than the allowance, whatever the interleaving
        assert spent >= 1, (round_, statuses)  # the first to arrive is served (a refused one still counts)
