"""How a failure should be treated by whoever drives a use case."""


class PermanentError(Exception):
    """Retrying cannot help (bad input, refused by a rule, revoked credentials)."""


class TransientError(Exception):
    """The same call may succeed later (timeouts, 5xx, lost connections)."""
