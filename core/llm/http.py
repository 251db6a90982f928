"""Blocking HTTP from gevent code: urllib runs in gevent's thread pool so the hub keeps
serving every call whether or not the process is monkey-patched; the wait has a hard timeout."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import gevent


class HttpError(RuntimeError):
    """Timed out, refused, or answered with an error status; `status` when there was one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def post(url: str, body: bytes, headers: dict, timeout: float) -> bytes:
    """POST `body`; the response body, or HttpError within about `timeout` seconds."""
    def call() -> bytes:
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - configured URL
                return resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise HttpError(f"HTTP {exc.code}: {detail}", exc.code) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise HttpError(f"request failed: {exc}") from None

    job = gevent.get_hub().threadpool.spawn(call)
    try:
        return job.get(timeout=timeout + 0.5)
    except gevent.Timeout:
        raise HttpError(f"no answer within {timeout:g} s") from None


def post_json(url: str, payload: dict, timeout: float, api_key: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    raw = post(url, json.dumps(payload, ensure_ascii=False).encode(), headers, timeout)
    try:
        return json.loads(raw)
    except ValueError:
        raise HttpError("the answer is not JSON") from None
