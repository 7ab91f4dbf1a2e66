"""Shop tasks: the follow-up of an install (webhook subscriptions, shop settings)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import procrastinate

from application.tasks import AFTER_INSTALL
from infrastructure.queue.retry import BackoffRetry

if TYPE_CHECKING:
    from interfaces.bootstrap import Container


def shops_blueprint(container: Container) -> procrastinate.Blueprint:
    bp = procrastinate.Blueprint()

    @bp.task(
        name=AFTER_INSTALL.name,
        queue=AFTER_INSTALL.queue,
        retry=BackoffRetry(max_attempts=8, base_seconds=5, cap_seconds=1800),
    )
    async def after_install(shop_id: str) -> None:
        await container.after_install()(uuid.UUID(shop_id))

    return bp
