"""Finished jobs older than the retention period leave the jobs table."""

from __future__ import annotations

from application.ports import JobAdmin


class PruneFinishedJobs:
    def __init__(self, admin: JobAdmin, *, older_than_hours: int = 72) -> None:
        self._admin = admin
        self._hours = older_than_hours

    async def __call__(self) -> None:
        await self._admin.prune_finished(older_than_hours=self._hours)
