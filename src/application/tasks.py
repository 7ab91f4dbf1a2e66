"""Job task names and queues, shared by whoever defers a job and the task that runs it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from application.ports import JobRequest

QUEUES = ("webhooks", "messages", "campaigns", "consent", "gdpr", "maintenance")


@dataclass(frozen=True, slots=True)
class TaskRef:
    namespace: str
    name: str
    queue: str

    @property
    def qualified(self) -> str:
        return f"{self.namespace}:{self.name}"

    def job(
        self,
        args: Mapping[str, Any] | None = None,
        *,
        queueing_lock: str | None = None,
        lock: str | None = None,
        scheduled_at: datetime | None = None,
        priority: int = 0,
    ) -> JobRequest:
        return JobRequest(
            task=self.qualified,
            queue=self.queue,
            args=dict(args or {}),
            queueing_lock=queueing_lock,
            lock=lock,
            scheduled_at=scheduled_at,
            priority=priority,
        )


RECOVER_STALLED_JOBS = TaskRef("maintenance", "recover_stalled_jobs", "maintenance")
PRUNE_FINISHED_JOBS = TaskRef("maintenance", "prune_finished_jobs", "maintenance")
PRUNE_RATE_LIMITS = TaskRef("maintenance", "prune_rate_limits", "maintenance")
PROCESS_WEBHOOK = TaskRef("events", "process_webhook", "webhooks")
PRUNE_WEBHOOK_EVENTS = TaskRef("events", "prune_webhook_events", "maintenance")
AFTER_INSTALL = TaskRef("shops", "after_install", "webhooks")
PUSH_CONSENT = TaskRef("consent", "push_to_shopify", "consent")
IMPORT_CONTACTS = TaskRef("consent", "import_contacts", "consent")
PURGE_SHOP = TaskRef("gdpr", "purge_shop", "gdpr")
FULFIL_OVERDUE_GDPR = TaskRef("gdpr", "fulfil_overdue", "gdpr")
DELIVER_MESSAGES = TaskRef("messages", "deliver", "messages")
SWEEP_MESSAGES = TaskRef("messages", "sweep", "maintenance")

# Work that records what shoppers and Shopify said (a STOP, a redact request, an import's
# consent): it must still happen when the merchant uninstalls, unlike sends and pushes.
OUTLIVES_UNINSTALL = (PROCESS_WEBHOOK, IMPORT_CONTACTS, PURGE_SHOP)
