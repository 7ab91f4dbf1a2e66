"""Request ids: accept a well-formed `X-Request-ID`, otherwise make one; echo it, log it,
and carry it into every job deferred while handling the request."""

from __future__ import annotations

import re
import secrets

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from infrastructure.telemetry.logging import request_id_var

HEADER = "x-request-id"
_HEADER_BYTES = HEADER.encode()
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,128}")


class RequestIdMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        # ASGI servers pass header names lower-cased.
        offered = next((v.decode("latin-1") for k, v in scope["headers"] if k == _HEADER_BYTES), "")
        request_id = offered if _WELL_FORMED.fullmatch(offered) else secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        encoded = request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Appended as raw bytes: nothing upstream sets this header, and Litestar's
                # MutableScopeHeaders decodes every header to look for one.
                message["headers"] = [*message.get("headers", ()), (_HEADER_BYTES, encoded)]
            await send(message)

        try:
            await next_app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
