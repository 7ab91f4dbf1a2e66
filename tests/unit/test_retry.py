"""Our retry strategy: exponential, jittered, capped, bounded; permanent errors stop."""

from __future__ import annotations

from procrastinate.jobs import Job

from application.errors import PermanentError, TransientError
from domain.errors import InvalidValue
from infrastructure.queue.retry import BackoffRetry


def _job(attempts: int) -> Job:
    return Job(id=1, queue="q", lock=None, queueing_lock=None, task_name="t", attempts=attempts)


def test_backoff_grows_exponentially_up_to_the_cap_at_full_jitter():
    strategy = BackoffRetry(base_seconds=2, cap_seconds=60, rand=lambda: 1.0)
    assert [strategy.delay(n) for n in range(7)] == [2, 4, 8, 16, 32, 60, 60]


def test_jitter_spreads_delays_below_the_ceiling():
    strategy = BackoffRetry(base_seconds=2, cap_seconds=60, rand=lambda: 0.25)
    assert strategy.delay(3) == 4.0


def test_transient_errors_retry_until_the_attempt_budget_is_spent():
    strategy = BackoffRetry(max_attempts=3, rand=lambda: 0.5)
    decisions = [
        strategy.get_retry_decision(exception=TransientError("x"), job=_job(n)) for n in range(3)
    ]
    assert [d is not None for d in decisions] == [True, True, False]


def test_permanent_and_domain_errors_fail_at_once():
    strategy = BackoffRetry(max_attempts=5)
    for error in (PermanentError("bad"), InvalidValue("bad number")):
        assert strategy.get_retry_decision(exception=error, job=_job(0)) is None


def test_only_workers_dedicated_to_hot_queues_delete_succeeded_jobs():
    from infrastructure.queue.app import delete_jobs_policy

    assert delete_jobs_policy(["messages", "campaigns"]) == "successful"
    assert delete_jobs_policy(["messages", "webhooks"]) == "never"
    assert delete_jobs_policy(None) == "never"
