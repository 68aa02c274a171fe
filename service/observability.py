"""Metrics (Prometheus, ``/metrics``) and JSON logs with a request id on every line.

Logs name routes by their template (``/g/<token>``), never the raw path, and never carry bodies: tokens,
one-time codes, link tokens and phone numbers stay out of them.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import random
import re
import sys
import time
from typing import Any

from flask import Flask, Response, abort, current_app, g, has_request_context, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REQUESTS = Counter("consent_gate_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "consent_gate_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DECISIONS = Counter("consent_gate_verification_decisions_total", "Verification decisions", ["decision", "reason"])
SMS = Counter("consent_gate_sms_total", "SMS sent or failed", ["kind", "status"])

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_configured = False


class JsonFormatter(logging.Formatter):
    """One JSON object per line; times in UTC (``Z``), to the millisecond."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def _time(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # formatting a time costs more than the rest of the line: once a second
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Outside Flask (the verification endpoint) the id arrives as ``extra={"request_id": ...}``.
        if has_request_context():
            record.request_id = g.get("request_id")
        elif not hasattr(record, "request_id"):
            record.request_id = None
        return True


ACCESS_LOG = logging.getLogger("service.requests")
# Labelled metric children, looked up once: prometheus_client's ``labels()`` costs more than the count.
_CHILDREN: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def request_id(incoming: str) -> str:
    """The caller's ``X-Request-ID`` when it is sane, else a new one: 128 random bits, in hex.

    Ids correlate log lines; they need to be unique, not secret, so they come from ``random`` (seeded
    from the system's entropy, and again in every forked worker) rather than a system call per request.
    """
    return incoming if REQUEST_ID.match(incoming) else f"{random.getrandbits(128):032x}"


def observe_request(method: str, route: str, status: int, elapsed: float, rid: str, log_requests: bool) -> None:
    """Count, time and (unless switched off) log one finished request, by route template."""
    counted = _CHILDREN.get((method, route, status))
    if counted is None:
        counted = _CHILDREN[(method, route, status)] = (
            REQUESTS.labels(method, route, str(status)),
            LATENCY.labels(route),
        )
    counted[0].inc()
    counted[1].observe(elapsed)
    if log_requests:
        ACCESS_LOG.info("%s %s %s %.1fms", method, route, status, elapsed * 1000, extra={"request_id": rid})


def configure_logging(fmt: str) -> None:
    """One JSON handler on the root logger, once per process."""
    global _configured
    if _configured:
        return
    _configured = True
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level == logging.WARNING:
        root.setLevel(logging.INFO)


def _route() -> str:
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def log_exception(app: Flask, exc_info: Any) -> None:
    """Log an unhandled exception by its route's template, as Flask's own ``log_exception`` would by its path.

    A path can hold a link token (``/g/<token>``, ``/p/<token>``, ``/report/<token>``): whoever reads the
    error log could open the page. The template names the route as well, and holds nothing secret.
    """
    app.logger.error("Exception on %s [%s]", _route(), request.method, exc_info=exc_info)


def init_app(app: Flask) -> None:
    configure_logging(app.config["LOG_FORMAT"])
    # An instance attribute, not a subclass: the app is built in one place (service.create_app).
    app.log_exception = functools.partial(log_exception, app)  # type: ignore[method-assign]

    @app.before_request
    def _start() -> None:
        g.request_id = request_id(request.headers.get("X-Request-ID", ""))
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        rid = g.get("request_id", "")
        observe_request(request.method, _route(), response.status_code, elapsed, rid, app.config["LOG_REQUESTS"])
        response.headers["X-Request-ID"] = rid
        return response

    app.add_url_rule("/metrics", "metrics", metrics)


def _metrics_allowed() -> None:
    """``/metrics`` counts every organization's requests and decisions: for the operator only.

    With ``METRICS_TOKEN`` set, only ``Authorization: Bearer <METRICS_TOKEN>`` reads it (401 otherwise,
    compared in constant time); without one it does not exist (404), except in development.
    """
    token = current_app.config["METRICS_TOKEN"]
    if not token:
        if current_app.config["ENV"] != "development":
            abort(404)
        return
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if not (scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode())):
        abort(401, description="send the metrics token as 'Authorization: Bearer <METRICS_TOKEN>'")


def metrics() -> Response:
    """Prometheus text format; with several gunicorn workers, the sum over all of them."""
    _metrics_allowed()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
