"""The baseline: a bare Flask endpoint that parses the same JSON body and answers a small JSON object."""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/v1/verifications")
def verifications():  # type: ignore[no-untyped-def]
    body = request.get_json()
    return jsonify(decision="deny", reason="no_consent", consent_id=None, verification_id=str(len(body)))


@app.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(status="ok")
