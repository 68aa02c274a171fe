"""Fuzzing from the committed spec (Schemathesis), and a stateful journey through the API (Hypothesis)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

if TYPE_CHECKING:
    from tests.support import PurposeBody, Tenant


ROOT = Path(__file__).resolve().parent.parent
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth"


@pytest.fixture()
def no_rate_limits(app_config: dict[str, Any]) -> None:
    app_config["RATE_LIMITS_ENABLED"] = False


@pytest.mark.parametrize("scope", ["admin", "consents", "verify"])
def test_schemathesis_finds_no_server_errors_or_spec_mismatches(
    no_rate_limits: None, live: str, tenant: Tenant, scope: str
) -> None:
    tenant.purpose("door_access")
    person = tenant.subject()
    tenant.consent(person["id"])
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            str(ROOT / "openapi" / "openapi.json"),
            "--url",
            live,
            "-H",
            f"Authorization: Bearer {tenant.keys[scope]}",
            "--checks",
            CHECKS,
            "--max-examples",
            "8",
            "--seed",
            "7",
            "--workers",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout


class ConsentJourney(RuleBasedStateMachine):
    """purpose -> subject -> consent -> verify -> revoke -> verify, in any order Hypothesis likes."""

    purposes = Bundle("purposes")
    subjects = Bundle("subjects")
    consents = Bundle("consents")

    def __init__(self, tenant: Tenant, purpose_body: PurposeBody):
        super().__init__()
        self.tenant, self.purpose_body = tenant, purpose_body
        self.live: dict[tuple[str, str], str] = {}  # (subject, purpose) -> consent id
        self.state: dict[str, str] = {}  # consent id -> active | revoked
        self.tokens: dict[str, str] = {}
        self.purpose_of: dict[str, tuple[str, str]] = {}

    @initialize(target=purposes)
    def first_purpose(self) -> str:
        return self._purpose("p0")

    @rule(target=purposes, name=st.sampled_from(["p1", "p2", "p3"]))
    def create_purpose(self, name: str) -> str:
        return self._purpose(name)

    def _purpose(self, code: str) -> str:
        response = self.tenant.post("/v1/purposes", self.purpose_body(code))
        assert response.status_code in {201, 409}
        if response.status_code == 201:
            self.tenant.assess([code])
        return code

    @rule(target=subjects)
    def register(self) -> str:
        return str(self.tenant.subject()["id"])

    @rule(target=consents, subject=subjects, purpose=purposes)
    def grant(self, subject: str, purpose: str) -> str:
        response = self.tenant.consent(subject, purpose)
        if (subject, purpose) in self.live:
            assert response.status_code == 409 and response.json["code"] == "consent_exists"
            return self.live[(subject, purpose)]
        assert response.status_code == 201, response.json
        consent_id = response.json["id"]
        self.live[(subject, purpose)] = consent_id
        self.state[consent_id] = "active"
        self.tokens[consent_id] = response.json["token"]
        self.purpose_of[consent_id] = (subject, purpose)
        return str(consent_id)

    @rule(consent=consents)
    def verify(self, consent: str) -> None:
        subject, purpose = self.purpose_of[consent]
        by_token = self.tenant.verify(purpose, token=self.tokens[consent]).json
        if self.state[consent] == "active":
            assert (by_token["decision"], by_token["reason"]) == ("allow", "consent_active")
        else:
            assert (by_token["decision"], by_token["reason"]) == ("deny", "revoked")
        by_subject = self.tenant.verify(purpose, subject_id=subject).json
        assert by_subject["decision"] == ("allow" if (subject, purpose) in self.live else "deny")

    @rule(consent=consents)
    def revoke(self, consent: str) -> None:
        response = self.tenant.post(f"/v1/consents/{consent}/revoke", scope="consents")
        assert response.status_code == 200 and response.json["status"] == "revoked"
        self.state[consent] = "revoked"
        # Revoking an old consent again (idempotent) leaves a newer one for the same person and purpose live.
        if self.live.get(self.purpose_of[consent]) == consent:
            del self.live[self.purpose_of[consent]]


@pytest.mark.committed
def test_stateful_consent_journey(tenant: Tenant, purpose_body: PurposeBody) -> None:
    run_state_machine_as_test(
        lambda: ConsentJourney(tenant, purpose_body),
        settings=settings(
            max_examples=15,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
