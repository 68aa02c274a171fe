"""The person's own page (``/p/<token>``, R16): their consents, withdrawal, a copy, requests and complaints."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from service.people.views import bp

    app.register_blueprint(bp)
