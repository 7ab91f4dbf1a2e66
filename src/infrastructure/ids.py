"""Time-ordered identifiers (UUIDv7) behind the `IdGenerator` port."""

from __future__ import annotations

import uuid

from uuid_utils.compat import uuid7


class Uuid7Ids:
    def new_id(self) -> uuid.UUID:
        return uuid7()
