"""Every table the application maps, imported once so Alembic sees them all."""

from infrastructure.db.audit import AuditLogModel
from infrastructure.db.automations import BackInStockRequestModel
from infrastructure.db.billing import WalletModel, WalletTopUpModel, WalletTransactionModel
from infrastructure.db.contacts import ConsentEventModel, ContactImportModel, ContactModel
from infrastructure.db.events import WebhookEventModel
from infrastructure.db.gdpr import GdprRequestModel
from infrastructure.db.messages import (
    InboundMessageModel,
    MessageEventModel,
    MessageModel,
    MessageReportModel,
)
from infrastructure.db.shops import OAuthStateModel, ShopCredentialModel, ShopModel
from infrastructure.db.unmatched_reports import UnmatchedReportModel
from infrastructure.queue.failures import JobFailureModel

__all__ = [
    "AuditLogModel",
    "BackInStockRequestModel",
    "ConsentEventModel",
    "ContactImportModel",
    "ContactModel",
    "GdprRequestModel",
    "InboundMessageModel",
    "JobFailureModel",
    "MessageEventModel",
    "MessageModel",
    "MessageReportModel",
    "OAuthStateModel",
    "ShopCredentialModel",
    "ShopModel",
    "UnmatchedReportModel",
    "WalletModel",
    "WalletTopUpModel",
    "WalletTransactionModel",
    "WebhookEventModel",
]
