"""The yardstick for the inbound figures: a bare Starlette endpoint under uvicorn that reads the
webhook's form and answers empty TwiML, with no signature, database or processing.

    python -m uvicorn benchmarks.bare_app:app --port PORT
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def sms(request: Request) -> Response:
    async with request.form() as form:
        form.get("Body")
    return Response(EMPTY_TWIML, media_type="application/xml")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/twilio/sms", sms, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
)
