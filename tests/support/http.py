"""An HTTP client for the ASGI app on the test's own event loop.

Litestar's test clients run the app on a portal thread with another loop, which the
session's shared database pool must never see.
"""

from __future__ import annotations

import httpx
from litestar import Litestar


def client(app: Litestar) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
