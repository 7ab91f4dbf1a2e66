"""Every table the application maps, imported once so Alembic sees them all."""

from infrastructure.db.audit import AuditLogModel
from infrastructure.db.shops import ShopModel
from infrastructure.queue.failures import JobFailureModel

__all__ = ["AuditLogModel", "JobFailureModel", "ShopModel"]
