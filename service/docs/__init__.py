"""``/docs``: the API's documentation, Swagger UI served by the service itself.

The page and its assets come from this service and load nothing from another host: its
``Content-Security-Policy`` allows only this origin (and ``data:`` images, which Swagger UI's stylesheet
inlines), no inline script. The assets are swagger-ui-dist's, vendored unchanged in ``static/`` (see
``VENDORED.md``); ``static/docs.js`` starts Swagger UI on the spec at ``/openapi.json``.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, render_template, url_for

POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

bp = Blueprint("docs", __name__, template_folder="templates", static_folder="static", static_url_path="/docs/static")


@bp.get("/docs")
def docs() -> Response:
    """The API's documentation, to read and try."""
    page = render_template(
        "docs.html", title=current_app.config["API_TITLE"], spec_url=url_for("api-docs.openapi_json")
    )
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = POLICY
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
