"""JSON API under /api/v1: bearer tokens, one error format, an OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import HTTPException

from core import clock
from core.models import ApiToken, hash_token
from webui.extensions import db

bp = Blueprint("api", __name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    body = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return jsonify(error_body(exc.code, exc.message, exc.fields)), exc.status


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    return jsonify(error_body(code, exc.description or exc.name)), exc.code


PUBLIC = {"api.openapi"}


@bp.before_request
def _authenticate():
    """Bearer token only: session cookies are ignored here, so CSRF cannot reach the API."""
    if request.endpoint in PUBLIC:
        return None
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "missing bearer token")
    row = db.session.scalar(db.select(ApiToken).where(
        ApiToken.token_hash == hash_token(token.strip()), ApiToken.revoked_at.is_(None)))
    if row is None or not row.user.active:
        raise ApiError(401, "unauthorized", "invalid or revoked token")
    row.last_used_at = clock.now()
    g.api_user = row.user
    return None


def json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "expected a JSON object body")
    return data


def page_args(max_per_page: int = 100) -> tuple[int, int]:
    page = request.args.get("page", 1, type=int)
    per_page = request.args.get("per_page", 20, type=int)
    if page < 1 or not 1 <= per_page <= max_per_page:
        raise ApiError(400, "bad_request", f"page >= 1 and 1 <= per_page <= {max_per_page}")
    return page, per_page


def paged(stmt, serialise) -> dict:
    page, per_page = page_args()
    result = db.paginate(stmt, page=page, per_page=per_page, error_out=False)
    return {"items": [serialise(r) for r in result.items], "page": page,
            "per_page": per_page, "total": result.total}


from webui.api import (  # noqa: E402,F401  (routes)
    after_call,
    calls,
    exports,
    imports,
    notifications,
    openapi,
    tasks,
)
