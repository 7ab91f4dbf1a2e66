"""IndexMessagePhones: give texts stored before messages had a phone blind index (migration
0017) their index, so erasure and export find them by the person's number and not only by
contact. The migration cannot do it: the digest needs the decrypted number and the index
key. Each batch is its own short transaction; running it again, or while the service runs,
is harmless."""

from __future__ import annotations

import uuid

from application.ports import UnitOfWorkFactory

BATCH = 500


class IndexMessagePhones:
    def __init__(self, uows: UnitOfWorkFactory, *, batch: int = BATCH) -> None:
        self._uows = uows
        self._batch = batch

    async def __call__(self) -> int:
        """How many messages and inbound texts were indexed."""
        return await self._walk(inbound=False) + await self._walk(inbound=True)

    async def _walk(self, *, inbound: bool) -> int:
        indexed = 0
        after: uuid.UUID | None = None
        while True:
            async with self._uows.maintenance() as uow:
                done, after = await uow.messages.index_phones(
                    inbound=inbound, after=after, limit=self._batch
                )
                await uow.commit()
            indexed += done
            if after is None:
                return indexed
