"""Jobs whose worker stopped heart-beating go back to the queue, up to a limit."""

from __future__ import annotations

from application.ports import JobAdmin

# A job that has run this often and whose worker died again most likely kills its worker
# (memory, a native crash): requeued, it would take a worker down every few minutes.
MOST_ATTEMPTS = 5


class RecoverStalledJobs:
    def __init__(self, admin: JobAdmin, *, seconds_since_heartbeat: float) -> None:
        self._admin = admin
        self._threshold = seconds_since_heartbeat

    async def __call__(self) -> list[int]:
        stalled = await self._admin.stalled_jobs(seconds_since_heartbeat=self._threshold)
        for job_id, attempts in stalled:
            if attempts + 1 >= MOST_ATTEMPTS:
                await self._admin.fail_stalled(
                    job_id, f"its worker died while running it ({attempts + 1} runs)"
                )
            else:
                await self._admin.requeue_stalled(job_id)
        return [job_id for job_id, _ in stalled]
