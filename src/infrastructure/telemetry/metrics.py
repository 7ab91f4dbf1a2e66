"""Application metrics, on the default Prometheus registry that `/metrics` serves."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# The series Litestar's Prometheus middleware keeps, under the same names and labels; ours
# (interfaces.http.metrics) fills them.
_HTTP_LABELS = ["method", "path", "status_code", "app_name"]
HTTP_REQUESTS = Counter("blossom_requests_total", "Total requests", _HTTP_LABELS)
HTTP_REQUEST_ERRORS = Counter(
    "blossom_requests_error_total", "Total errors in requests", _HTTP_LABELS
)
HTTP_REQUEST_SECONDS = Histogram(
    "blossom_request_duration_seconds", "Request duration, in seconds", _HTTP_LABELS
)
HTTP_REQUESTS_IN_PROGRESS = Gauge(
    "blossom_requests_in_progress",
    "Total requests currently in progress",
    _HTTP_LABELS,
    multiprocess_mode="livesum",
)
JOBS = Counter(
    "blossom_jobs_total", "Jobs run by the worker, by task and outcome", ["task", "outcome"]
)
JOB_SECONDS = Histogram("blossom_job_duration_seconds", "Job run time", ["task"])
JOBS_DEFERRED = Counter("blossom_jobs_deferred_total", "Jobs deferred, by task", ["task"])
QUEUE_DEPTH = Gauge("blossom_queue_depth", "Jobs waiting, by queue and status", ["queue", "status"])
WORKER_RECONNECTS = Counter(
    "blossom_worker_reconnects_total", "Worker restarts after losing the database"
)
STALLED_JOBS_RECOVERED = Counter(
    "blossom_stalled_jobs_recovered_total", "Jobs of dead workers put back in the queue"
)
WEBHOOKS = Counter(
    "blossom_webhooks_total",
    "Shopify webhook deliveries, by topic and outcome (accepted, duplicate, rejected …)",
    ["topic", "outcome"],
)
GROUP_COMMIT_BATCH = Histogram(
    "blossom_group_commit_batch_size",
    "Items written per group-commit transaction, by writer (webhooks)",
    ["writer"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
SHOPIFY_CALLS = Counter(
    "blossom_shopify_calls_total", "Shopify Admin API calls, by HTTP status", ["status"]
)
SHOPIFY_GRAPHQL_RETRIED = Counter(
    "blossom_shopify_graphql_retried_total",
    "Shopify GraphQL answers (HTTP 200) retried, by error code (THROTTLED, INTERNAL_SERVER_ERROR)",
    ["code"],
)
RATE_LIMIT_DECISIONS = Counter(
    "blossom_rate_limit_decisions_total",
    "Rate-limit decisions, by limit name (the key's prefix) and decision (allowed, denied)",
    ["name", "decision"],
)
GDPR_REQUESTS_OVERDUE = Gauge(
    "blossom_gdpr_requests_overdue",
    "GDPR requests past their legal due date (30 days) and not fulfilled",
)
WALLET_DEBITS = Counter(
    "blossom_wallet_debits_credits_total", "Credits reserved and captured", ["kind"]
)
WALLET_LOW_BALANCE = Counter(
    "blossom_wallet_low_balance_total", "Times a wallet fell below its low-balance threshold"
)
MESSAGES = Counter(
    "blossom_messages_total",
    "Messages entering a status (queued, sent, delivered, blocked_consent …), by category",
    ["status", "category"],
)
SMS_PROVIDER_LATENCY = Histogram(
    "blossom_sms_provider_seconds",
    "SMS provider call latency, by operation (send, lookup) and outcome",
    ["operation", "outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SMS_PROVIDER_ERRORS = Counter(
    "blossom_sms_provider_errors_total",
    "SMS provider failures, by kind (timeout, server_error, rate_limited, rejected, auth)",
    ["kind"],
)
SMS_REPORTS = Counter(
    "blossom_sms_reports_total",
    "Provider callbacks, by kind (dlr, inbound) and outcome (applied, duplicate, unknown …)",
    ["kind", "outcome"],
)
