"""Every error as RFC 9457 problem+json with a stable `type`, never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import ClientException, HTTPException
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)

from application.ports import RateLimit, RateLimiter
from domain.errors import DomainError, InvalidValue, NotFound

PROBLEM_BASE = "https://sms-blossom.app/problems/"
log = logging.getLogger("blossom.http")

_TYPES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "unprocessable",
    429: "rate-limited",
    503: "unavailable",
}


def problem_type(status: int) -> str:
    return PROBLEM_BASE + _TYPES.get(status, "server-error" if status >= 500 else "bad-request")


def _from_http(exc: HTTPException) -> ProblemDetailsException:
    extra = (
        exc.extra if isinstance(exc.extra, dict) else ({"errors": exc.extra} if exc.extra else None)
    )
    status = exc.status_code
    return ProblemDetailsException(
        status_code=status,
        type_=problem_type(status),
        title=HTTPStatus(status).phrase,
        detail=exc.detail if exc.detail != HTTPStatus(status).phrase else "",
        headers=exc.headers,
        extra=extra,
    )


def _from_domain(exc: DomainError) -> ProblemDetailsException:
    status = 404 if isinstance(exc, NotFound) else 422 if isinstance(exc, InvalidValue) else 409
    return ProblemDetailsException(
        status_code=status,
        type_=PROBLEM_BASE + exc.code,
        title=HTTPStatus(status).phrase,
        detail=str(exc),
    )


def _from_unexpected(exc: Exception) -> ProblemDetailsException:
    log.exception("unhandled error", exc_info=exc)
    return ProblemDetailsException(
        status_code=500,
        type_=problem_type(500),
        title="Internal Server Error",
        detail="Something went wrong on our side; it has been logged.",
    )


_TO_PROBLEM: dict[type[Exception], Callable[[Any], ProblemDetailsException]] = {
    ProblemDetailsException: lambda exc: exc,
    HTTPException: _from_http,
    DomainError: _from_domain,
    Exception: _from_unexpected,
}
ANSWERED_AS_PROBLEMS = tuple(_TO_PROBLEM)
"""A router that answers errors in another form maps all of these: Litestar takes the handler
of the most specific class in the exception's MRO, whichever layer registered it."""


def as_problem(exc: Exception) -> ProblemDetailsException:
    """The problem the app answers `exc` with."""
    convert = next(_TO_PROBLEM[cls] for cls in type(exc).__mro__ if cls in _TO_PROBLEM)
    return convert(exc)


def problem_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return as_problem(exc).to_response(request)


def problem_details_plugin() -> ProblemDetailsPlugin:
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            enable_for_all_http_exceptions=True, exception_to_problem_detail_map=_TO_PROBLEM
        )
    )


class JsonBodyRequest(Request[Any, Any, Any]):
    """The app's request class. Litestar answers msgspec's `DecodeError` with a 400, but
    msgspec raises two other errors for a malformed body: `UnicodeDecodeError` for bytes
    that are not UTF-8 and `RecursionError` for nesting past its depth limit. Both are the
    client's mistake, so they are a 400 problem too, never a logged 500."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except UnicodeDecodeError:
            raise ClientException(detail="JSON is malformed: not UTF-8") from None
        except RecursionError:
            raise ClientException(detail="JSON is malformed: nested too deeply") from None


async def within_limit(limiter: RateLimiter, key: str, limit: RateLimit, detail: str) -> None:
    """Take one from `key`'s allowance, or refuse with 429 and when to come back."""
    decision = await limiter.acquire(key, limit)
    if not decision.allowed:
        raise HTTPException(
            status_code=429,
            detail=detail,
            headers={"Retry-After": str(max(1, round(decision.retry_after_seconds)))},
        )
