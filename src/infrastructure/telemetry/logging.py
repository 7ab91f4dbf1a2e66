"""JSON logging with PII and secret redaction.

Every string that reaches a log line — message, extra fields, exception text — passes
through `redact()`, so phone numbers, e-mail addresses and credentials never land in log
storage even when a caller logs them by mistake.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import traceback
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_HANDLER_NAME = "sms_blossom.json"
# procrastinate logs every job start and end at INFO; our middleware logs outcomes.
_NOISY_LOGGERS = ("asyncio", "httpx", "pgserver", "procrastinate")

_SENSITIVE_NAME = (
    r"[\w-]*?(?:secret|password|passwd|token|api[_-]?key|(?:secret|private)[_-]?key"
    r"|authorization|credentials?|cookie)"
)
_SENSITIVE_KEY = re.compile(_SENSITIVE_NAME, re.IGNORECASE)

# `key=value`, `key: value`, `"key": "value"` and Python-repr `'key': 'value'`. An auth
# scheme (`Bearer xyz`) belongs to the value so the credential after it is caught too.
_SENSITIVE_PAIR = re.compile(
    rf"""
    (?P<key>(?<![\w-])(?P<quote>["']?){_SENSITIVE_NAME}(?P=quote))
    (?P<sep>\s*[:=]\s*)
    (?P<value>
        "(?:[^"\\]|\\.)*"
      | '(?:[^'\\]|\\.)*'
      | (?:(?:bearer|basic|digest|token)\s+)?[^\s,;&'"}})\]]+
    )
    """,
    re.IGNORECASE | re.VERBOSE,
)
_BEARER = re.compile(r"\b(bearer)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/\s@]+:)[^@\s/]+@")
_JWT = re.compile(r"(?<![\w-])eyJ[\w-]*\.[\w-]+\.[\w-]*")
_SHOPIFY_TOKEN = re.compile(r"(?<![A-Za-z0-9])shp(?:at|ca|pa|ss|rt)_[A-Za-z0-9]+")
# Also as they appear percent-encoded in a logged URL or form body: "%40", "%2B".
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
    r"\.[A-Za-z]{2,}"
)
# After a word character only when that ends another escape: "%3D%2B1415…" is a URL nested
# in a query string, whose "=" is encoded too.
_ENCODED_PHONE = re.compile(r"(?:(?<![\w.+-])|(?<=%[0-9A-F]{2}))%2B\d{8,15}(?!\d)", re.IGNORECASE)

# Digit groups joined by dashes and dots also make UUIDs, dates and IP addresses; those
# are matched first and kept, so the phone alternative never sees them.
_KEEP = r"""
    [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}
  | \d{4}-\d{2}-\d{2}(?:[T\s]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?
  | (?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])
"""
_PHONE = r"""
    (?<![\w.+-])
    (?:
        \+\d{8,15}
      | (?:\+\d{1,3}[ .-]?)?
        (?:\(\d{1,4}\)[ .-]?|\d{1,4}[ .-])
        \d{2,4}(?:[ .-]\d{2,4}){1,3}
    )
    (?![\w+]|[.-]\d)
"""
_PHONE_OR_KEPT = re.compile(rf"(?P<keep>{_KEEP})|(?P<phone>{_PHONE})", re.IGNORECASE | re.VERBOSE)
_MIN_PHONE_DIGITS = 8
_MAX_PHONE_DIGITS = 15

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
) | {"message", "asctime"}


def redact(text: str) -> str:
    """Replace phone numbers, e-mail addresses, tokens and secret values in `text`."""
    text = _SENSITIVE_PAIR.sub(_redact_pair, text)
    text = _BEARER.sub(r"\1 [redacted]", text)
    text = _URL_PASSWORD.sub(r"\1[redacted]@", text)
    text = _JWT.sub("[token]", text)
    text = _SHOPIFY_TOKEN.sub("[token]", text)
    text = _EMAIL.sub("[email]", text)
    text = _ENCODED_PHONE.sub("[phone]", text)
    return _PHONE_OR_KEPT.sub(_redact_phone, text)


def redacted_traceback(exc: BaseException) -> str:
    """The exception's full traceback and message, through `redact()`."""
    return redact("".join(traceback.format_exception(exc)))


def _redact_pair(match: re.Match[str]) -> str:
    value = match["value"]
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match['key']}{match['sep']}{quote}[redacted]{quote}"


def _redact_phone(match: re.Match[str]) -> str:
    if match["keep"]:
        return match["keep"]
    digits = sum(char.isdigit() for char in match["phone"])
    if _MIN_PHONE_DIGITS <= digits <= _MAX_PHONE_DIGITS:
        return "[phone]"
    return match["phone"]


def _redact_value(value: Any) -> Any:
    """Make `value` JSON-safe with every string inside it redacted."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        # json.dumps would write NaN/Infinity, which is not JSON.
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {
            redact(str(key)): "[redacted]"
            if _SENSITIVE_KEY.fullmatch(str(key))
            else _redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(item) for item in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One redacted JSON object per line: ts, level, logger, msg, ids, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        extras = {
            key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRIBUTES
        }
        payload: dict[str, Any] = _redact_value(extras)
        payload.update(
            ts=datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            level=record.levelname,
            logger=record.name,
            msg=redact(record.getMessage()),
        )
        request_id = request_id_var.get()
        if request_id is not None:
            payload["request_id"] = redact(request_id)
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            payload["trace_id"] = format(span_context.trace_id, "032x")
            payload["span_id"] = format(span_context.span_id, "016x")
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            payload["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(payload, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time, so a swapped or closed stream
    (test capture, exit-time handlers) is never written to after it is gone."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    """Send root logging to stderr as redacted JSON; calling again replaces, not adds."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
