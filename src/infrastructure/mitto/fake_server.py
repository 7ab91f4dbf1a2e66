"""A loopback stand-in for Mitto's SMS REST API (contract sms.md §1), with its failure modes.

`POST /sms` validates and accepts like Mitto (refusals are HTTP 200 with a non-zero
`responseCode`; a bad key is HTTP 401); `GET /sms?reference=` is the lookup our adapter
assumes. Failures are programmed per request: error statuses, 429 with Retry-After, and
timeouts that hang before or after the message is accepted. `report` and `inbound` call
the app back the way Mitto's plugin shape is described.

The fake is self-contained on purpose: it imports no other project module, so it checks the
app's Mitto adapter instead of sharing its bugs. It is a bare ASGI app (no framework) so the
benchmark can push thousands of sends a second through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.client import responses
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qs

import httpx
import uvicorn

STARTUP_POLLS = 500
SMS_PATH = "/sms"
TYPES = {"gsm": "GSM", "unicode": "Unicode", "binary": "Binary", "auto": "auto"}
RECEIVER = re.compile(r"\d{8,15}")
NUMERIC_SENDER = re.compile(r"\d{3,14}")
ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9 .&_+-]{3,11}")
# GSM 03.38 default alphabet (escape excluded) and its extension table (3GPP TS 23.038).
GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
) | frozenset("\f^{}\\[~]|€")
RESPONSE_TEXTS = {
    0: "OK",
    1: "Internal error",
    2: "Invalid type",
    3: "Empty message",
    4: "Text invalid for encoding",
    5: "Empty sender",
    6: "Invalid sender",
    7: "Empty receiver",
    8: "Invalid receiver",
    9: "Character set error",
}
JSON_HEADERS = [(b"content-type", b"application/json")]

Shape = Literal["json", "form", "query"]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class AcceptedSms:
    """One message the fake accepted, as it arrived (`to` in digits, no plus)."""

    provider_id: str
    reference: str | None
    to: str
    text: str
    type: str
    sender: str
    callback: str | None
    test: bool
    timestamp: str


@dataclass(slots=True)
class _Answer:
    status: int
    body: Any
    headers: list[tuple[bytes, bytes]]


@dataclass(slots=True)
class _Failure:
    route: str
    remaining: int
    status: int
    retry_after: float | str | None
    body: Any

    def answer(self) -> _Answer:
        headers = list(JSON_HEADERS)
        if self.retry_after is not None:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        if isinstance(self.body, bytes | str):
            raw = self.body.encode() if isinstance(self.body, str) else self.body
            return _Answer(self.status, raw, [(b"content-type", b"text/plain"), *headers[1:]])
        body = {"message": responses.get(self.status, "Error")} if self.body is None else self.body
        return _Answer(self.status, body, headers)


@dataclass(slots=True)
class _Timeout:
    route: str
    remaining: int
    accept: bool


class FakeMitto:
    """A real HTTP server on 127.0.0.1 that answers like Mitto; state is plain attributes."""

    def __init__(
        self,
        api_key: str = "fake-mitto-key",
        *,
        latency: float = 0.0,
        hang_seconds: float = 60.0,
        check_encoding: bool = True,
    ) -> None:
        self.api_key = api_key
        self.latency = latency  # seconds added to every request
        self.hang_seconds = hang_seconds  # how long a programmed timeout hangs at most
        self.check_encoding = check_encoding  # refuse non-GSM text sent as GSM (code 4)
        self.reset()
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What `MITTO_BASE_URL` should be to point the app at this fake."""
        if self._port is None:
            raise RuntimeError("FakeMitto is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("FakeMitto is already started")
        # Binding ourselves gives a free port known before uvicorn reports it.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            log_config=None,
            lifespan="off",
            interface="asgi3",  # a bound method does not look like ASGI 3 to uvicorn
            backlog=4096,
            # Longer than httpx's 5 s keep-alive, so clients close idle connections first and
            # never race the server's close with a new request.
            timeout_keep_alive=30,
        )
        self._stopping = asyncio.Event()
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        await self._wait_started()

    async def _wait_started(self) -> None:
        assert self._server is not None and self._task is not None
        for _ in range(STARTUP_POLLS):
            if self._server.started:
                return
            if self._task.done():
                break
            await asyncio.sleep(0.01)
        await self.stop()  # re-raises the server's own startup error, if any
        raise RuntimeError("FakeMitto did not start")

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._stopping.set()  # ends hanging requests so shutdown need not wait for them
        self._server.should_exit = True
        task, self._task, self._server = self._task, None, None
        await task

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- test helpers ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every message, count and programmed failure (one fake, many tests)."""
        self.lookup_supported = True  # False: the lookup answers 501, as if Mitto had none
        self.rejected_numbers: set[str] = set()
        self.accepted: list[AcceptedSms] = []
        self.accepted_by_reference: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()  # "POST /sms" -> requests received
        self.response_codes: Counter[int] = Counter()  # responseCode -> answers given
        self._by_reference: dict[str, AcceptedSms] = {}
        self._failures: list[_Failure] = []
        self._timeouts: list[_Timeout] = []

    def fail_next(
        self,
        status: int,
        count: int = 1,
        retry_after: float | str | None = None,
        body: Any = None,
        *,
        method: str = "POST",
        path: str = SMS_PATH,
    ) -> None:
        """Answer the next `count` requests to `method path` with `status` (before the key
        is checked). `retry_after` becomes the Retry-After header (seconds or an HTTP-date);
        a bytes/str body goes raw, a dict as JSON (e.g. HTTP 200 with responseCode 1)."""
        self._failures.append(_Failure(f"{method} {path}", count, status, retry_after, body))

    def timeout_next(self, count: int = 1, *, accept: bool = True) -> None:
        """Hang the next `count` sends until the client gives up (or the fake stops). With
        `accept` the message is accepted first: Mitto has it, but the client never hears."""
        self._timeouts.append(_Timeout(f"POST {SMS_PATH}", count, accept))

    def reject_numbers(self, numbers: set[str] | frozenset[str]) -> None:
        """Answer responseCode 8 (invalid receiver) for these numbers (digits, no plus)."""
        self.rejected_numbers |= {number.removeprefix("+") for number in numbers}

    def by_reference(self, reference: str) -> AcceptedSms | None:
        """The last message accepted with this reference."""
        return self._by_reference.get(reference)

    async def report(
        self,
        url: str,
        reference: str,
        status: str = "Delivered",
        *,
        shape: Shape = "json",
        client: httpx.AsyncClient | None = None,
        **extra: Any,
    ) -> httpx.Response:
        """POST a delivery report for the message accepted with `reference` (its `msgid`
        can be overridden through `extra`, like any other field)."""
        accepted = self._by_reference.get(reference)
        if accepted is None and "msgid" not in extra:
            raise ValueError(f"FakeMitto accepted no message with reference {reference!r}")
        now = _now()
        fields: dict[str, Any] = {
            "msgid": accepted.provider_id if accepted else None,
            "reference": reference,
            "status": status,
            "errorCode": 0,
            "timestamp": now,
            "doneDate": now,
            **extra,
        }
        return await send_report(url, client=client, shape=shape, **fields)

    async def inbound(
        self,
        url: str,
        sender: str,
        receiver: str,
        text: str,
        *,
        shape: Shape = "json",
        client: httpx.AsyncClient | None = None,
        **extra: Any,
    ) -> httpx.Response:
        """POST an inbound (MO) message; numbers go as digits without the plus, like Mitto."""
        fields: dict[str, Any] = {
            "from": sender.removeprefix("+"),
            "to": receiver.removeprefix("+"),
            "text": text,
            "messageId": str(uuid.uuid4()),
            "timestamp": _now(),
            **extra,
        }
        return await send_report(url, client=client, shape=shape, **fields)

    # -- HTTP plumbing -----------------------------------------------------------------------

    async def _app(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        route = f"{scope['method']} {scope['path'].rstrip('/') or '/'}"
        self.calls[route] += 1
        body = await _read_body(receive)
        if self.latency:
            await self._pause(self.latency)
        answer = await self._answer(route, scope, body, receive)
        await _respond(send, answer)

    async def _answer(
        self, route: str, scope: dict[str, Any], body: bytes, receive: Receive
    ) -> _Answer:
        failure = _take(self._failures, route)
        if failure is not None:
            return failure.answer()
        if route not in (f"POST {SMS_PATH}", f"GET {SMS_PATH}"):
            status = 405 if route.endswith(f" {SMS_PATH}") else 404
            return _Answer(status, {"message": responses[status]}, JSON_HEADERS)
        if _header(scope, b"x-mitto-api-key") != self.api_key:
            return _Answer(401, {"message": "Unauthorized"}, JSON_HEADERS)
        if route.startswith("GET"):
            return self._lookup(scope)
        timeout = _take(self._timeouts, route)
        if timeout is None:
            return self._send(body)
        answer = self._send(body) if timeout.accept else None
        await self._hang(receive)
        return answer or _Answer(504, {"message": "Gateway Timeout"}, JSON_HEADERS)

    def _send(self, raw: bytes) -> _Answer:
        try:
            request = json.loads(raw)
        except ValueError:
            return _Answer(400, {"message": "Request body is not JSON"}, JSON_HEADERS)
        if not isinstance(request, dict):
            return _Answer(400, {"message": "Request body is not a JSON object"}, JSON_HEADERS)
        code = self._validate(request)
        if code:
            return self._coded(code)
        accepted = AcceptedSms(
            provider_id=str(uuid.uuid4()),
            reference=None if request.get("reference") is None else str(request["reference"]),
            to=str(request["to"]),
            text=str(request["text"]),
            type=TYPES[str(request.get("type") or "GSM").lower()],
            sender=str(request["from"]),
            callback=request.get("callback"),
            test=bool(request.get("test", False)),
            timestamp=_now(),
        )
        self.accepted.append(accepted)
        if accepted.reference is not None:
            self.accepted_by_reference[accepted.reference] += 1
            self._by_reference[accepted.reference] = accepted
        self.response_codes[0] += 1
        body = {
            "id": accepted.provider_id,
            "timestamp": accepted.timestamp,
            "responseCode": 0,
            "responseText": RESPONSE_TEXTS[0],
            "textLength": len(accepted.text),
            "test": accepted.test,
        }
        return _Answer(200, body, JSON_HEADERS)

    def _validate(self, request: Mapping[str, Any]) -> int:
        """Mitto's responseCode for this request: 0 when it would be accepted."""
        kind = str(request.get("type") or "GSM").lower()
        text, sender, to = request.get("text"), request.get("from"), request.get("to")
        if kind not in TYPES:
            return 2
        if not isinstance(text, str) or not text:
            return 3
        if kind == "gsm" and self.check_encoding and not GSM7.issuperset(text):
            return 4
        if not sender:
            return 5
        if not _valid_sender(str(sender)):
            return 6
        if not to:
            return 7
        if not RECEIVER.fullmatch(str(to)) or str(to) in self.rejected_numbers:
            return 8
        return 0

    def _coded(self, code: int) -> _Answer:
        self.response_codes[code] += 1
        body = {
            "id": None,
            "timestamp": _now(),
            "responseCode": code,
            "responseText": RESPONSE_TEXTS[code],
            "textLength": 0,
            "test": False,
        }
        return _Answer(200, body, JSON_HEADERS)

    def _lookup(self, scope: dict[str, Any]) -> _Answer:
        if not self.lookup_supported:
            return _Answer(501, {"message": "Not Implemented"}, JSON_HEADERS)
        query = parse_qs(scope.get("query_string", b"").decode())
        reference = (query.get("reference") or [""])[0]
        if not reference:
            return _Answer(400, {"message": "reference is required"}, JSON_HEADERS)
        accepted = self._by_reference.get(reference)
        if accepted is None:
            return _Answer(404, {"message": "Not Found"}, JSON_HEADERS)
        body = {
            "id": accepted.provider_id,
            "reference": reference,
            "timestamp": accepted.timestamp,
        }
        return _Answer(200, body, JSON_HEADERS)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _hang(self, receive: Receive) -> None:
        """Until the client hangs up, the fake stops, or `hang_seconds` pass."""
        waiters = [
            asyncio.ensure_future(_disconnected(receive)),
            asyncio.ensure_future(self._stopping.wait()),
        ]
        try:
            await asyncio.wait(
                waiters, timeout=self.hang_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()


# -- callbacks to the app ------------------------------------------------------------------


async def send_report(
    url: str,
    *,
    client: httpx.AsyncClient | None = None,
    shape: Shape = "json",
    **fields: Any,
) -> httpx.Response:
    """Call the app back with `fields` as a JSON body, a form, or a GET query string
    (`None` values are left out)."""
    present = {key: value for key, value in fields.items() if value is not None}
    if client is None:
        async with httpx.AsyncClient(timeout=10.0) as own:
            return await _call_back(own, url, shape, present)
    return await _call_back(client, url, shape, present)


async def _call_back(
    client: httpx.AsyncClient, url: str, shape: Shape, fields: dict[str, Any]
) -> httpx.Response:
    if shape == "json":
        return await client.post(url, json=fields)
    as_text = {key: str(value) for key, value in fields.items()}
    if shape == "form":
        return await client.post(url, data=as_text)
    return await client.get(url, params=as_text)


# -- module helpers ------------------------------------------------------------------------


def _take(queue: list[Any], route: str) -> Any:
    item = next((q for q in queue if q.route == route), None)
    if item is not None:
        item.remaining -= 1
        if item.remaining <= 0:
            queue.remove(item)
    return item


def _valid_sender(sender: str) -> bool:
    if sender.isdigit():
        return bool(NUMERIC_SENDER.fullmatch(sender))
    return bool(ALPHANUMERIC_SENDER.fullmatch(sender))


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _respond(send: Send, answer: _Answer) -> None:
    raw = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
    headers = [*answer.headers, (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
