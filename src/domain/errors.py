"""Domain errors: the failures the business rules themselves define."""


class DomainError(Exception):
    """A business rule refused an operation; the message is safe to show a merchant."""

    code = "domain-error"


class InvalidValue(DomainError):
    code = "invalid-value"


class NotFound(DomainError):
    code = "not-found"
