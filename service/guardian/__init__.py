"""The guardian's pages, reached by the links sent by SMS or shown as QR codes."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from service.guardian.views import bp

    app.register_blueprint(bp)
