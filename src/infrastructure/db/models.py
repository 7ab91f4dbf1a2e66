"""Every table the application maps, imported once so Alembic sees them all."""

from infrastructure.db.audit import AuditLogModel
from infrastructure.db.events import WebhookEventModel
from infrastructure.db.shops import OAuthStateModel, ShopCredentialModel, ShopModel
from infrastructure.queue.failures import JobFailureModel

__all__ = [
    "AuditLogModel",
    "JobFailureModel",
    "OAuthStateModel",
    "ShopCredentialModel",
    "ShopModel",
    "WebhookEventModel",
]
