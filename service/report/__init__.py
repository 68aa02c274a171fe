"""The compliance report's page for people: zh-CN and English, each chart with its table, and signed links
(``/report/<token>``) that open one organization's report in a browser without an API key."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from service.report.views import bp

    app.register_blueprint(bp)
