"""How a failure should be treated by whoever drives a use case."""


class PermanentError(Exception):
    """Retrying cannot help (bad input, refused by a rule, revoked credentials)."""


class TransientError(Exception):
    """The same call may succeed later (timeouts, 5xx, lost connections)."""


class ShopifyUnauthorized(PermanentError):
    """Shopify refused the credentials (revoked, uninstalled, wrong secret)."""


class ShopifyRejected(PermanentError):
    """Shopify answered but refused the request: OAuth errors, GraphQL errors, userErrors."""

    def __init__(self, message: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []

    def codes(self) -> set[str]:
        return {str(e.get("code")) for e in self.errors if e.get("code")}


class ScopesNotGranted(ShopifyRejected):
    """The token Shopify granted lacks a scope the product cannot work without. A fresh
    session token cannot change that; only granting the scopes (a new install) can."""


class ShopifyUnavailable(TransientError):
    """Timeouts, 5xx and throttling that outlasted our retries."""


class NotInstalled(PermanentError):
    """The shop is unknown, uninstalled or has no credentials."""


# The `SmsRejected` code for a receiver the provider refuses: no text to it can ever go.
INVALID_NUMBER = "invalid_number"


class SmsRejected(PermanentError):
    """The provider refused this message for good (`code`: invalid_number, invalid_sender,
    invalid_text …); resending the same message cannot help."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


class SmsUnauthorized(PermanentError):
    """The provider refused our credentials: nothing can be sent until an operator acts."""


class SmsUnavailable(TransientError):
    """Timeouts, 5xx and rate limiting that outlasted the adapter's own retries.

    `retry_after_seconds` is the provider's advice (a 429's Retry-After), when it gave one.
    """

    def __init__(self, detail: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class SmsFateUnknown(SmsUnavailable):
    """The request reached the provider and its answer was lost, and the provider cannot
    say whether it took the message: sending again could deliver it twice."""
