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


class ShopifyUnavailable(TransientError):
    """Timeouts, 5xx and throttling that outlasted our retries."""


class NotInstalled(PermanentError):
    """The shop is unknown, uninstalled or has no credentials."""
