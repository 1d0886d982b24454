"""Reading a webhook request safely: the content type, the size, the encoding (SPEC §7).

Bad input is a 4xx with a short reason, never a 500, and nothing is stored.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

FORM_TYPE = "application/x-www-form-urlencoded"


class BadRequest(Exception):
    """The request is malformed; answered with its status code and a short reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over `limit` bytes, declared or streamed."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BadRequest(413, "request too large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(413, "request too large")
    return body


async def read_form(request: Request, limit: int) -> list[tuple[str, str]]:
    """Read a small url-encoded form, refusing anything else with a 4xx."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise BadRequest(415, f"expected {FORM_TYPE}")
    body = await read_body(request, limit)
    try:
        # errors="strict": parse_qsl would otherwise turn bad %-escapes into U+FFFD silently.
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(400, "form is not valid UTF-8 url-encoding") from exc
    # No real SMS carries NUL, and PostgreSQL text cannot store it (it would be a 500).
    if any("\x00" in name or "\x00" in value for name, value in fields):
        raise BadRequest(400, "form contains NUL")
    return fields
