"""Every context's blueprint, by namespace: what a worker can run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import procrastinate

from interfaces.jobs.contacts import contacts_blueprint
from interfaces.jobs.events import events_blueprint
from interfaces.jobs.gdpr import gdpr_blueprint
from interfaces.jobs.maintenance import maintenance_blueprint
from interfaces.jobs.messages import messages_blueprint
from interfaces.jobs.shops import shops_blueprint

if TYPE_CHECKING:
    from interfaces.bootstrap import Container


def all_blueprints(container: Container) -> Mapping[str, procrastinate.Blueprint]:
    return {
        "maintenance": maintenance_blueprint(container),
        "events": events_blueprint(container),
        "shops": shops_blueprint(container),
        "consent": contacts_blueprint(container),
        "gdpr": gdpr_blueprint(container),
        "messages": messages_blueprint(container),
    }
