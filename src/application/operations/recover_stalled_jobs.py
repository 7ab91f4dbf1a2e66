"""Jobs whose worker stopped heart-beating go back to the queue, once each."""

from __future__ import annotations

from application.ports import JobAdmin


class RecoverStalledJobs:
    def __init__(self, admin: JobAdmin, *, seconds_since_heartbeat: float) -> None:
        self._admin = admin
        self._threshold = seconds_since_heartbeat

    async def __call__(self) -> list[int]:
        stalled = await self._admin.stalled_job_ids(seconds_since_heartbeat=self._threshold)
        for job_id in stalled:
            await self._admin.requeue_stalled(job_id)
        return stalled
