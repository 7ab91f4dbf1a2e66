"""`blossom jobs`: the dead-letter view — failed and stalled jobs, retry and cancel."""

from __future__ import annotations

import click

from application.operations.manage_jobs import (
    JOB_STATUSES,
    CancelJob,
    ListJobs,
    RetryJob,
    ShowJob,
)
from application.ports import JobSummary
from domain.errors import NotFound
from interfaces.bootstrap import Container
from interfaces.cli.main import operator, with_container

# procrastinate's ids are bigints: a larger number names no job, and would otherwise reach
# Postgres and come back as a database error (from `cancel`, as a traceback).
JOB_ID = click.IntRange(1, 2**63 - 1)


def _line(job: JobSummary) -> str:
    error = job.last_failure.error_type.rsplit(".", 1)[-1] if job.last_failure else ""
    return f"{job.id:>8}  {job.status:<9} {job.attempts:>3}  {job.queue:<12} {job.task:<40} {error}"


@click.group()
def jobs() -> None:
    """Queue operations: list, show, retry and cancel jobs."""


@jobs.command("list")
@click.option("--status", type=click.Choice(JOB_STATUSES), default="failed", show_default=True)
@click.option("--queue", help="Only this queue.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--stalled", is_flag=True, help="Jobs of workers that stopped heart-beating.")
def list_jobs(status: str, queue: str | None, limit: int, stalled: bool) -> None:
    """List jobs, newest first (default: the failed ones)."""

    async def action(container: Container) -> None:
        if stalled:
            running = await container.job_admin.stalled_jobs(
                seconds_since_heartbeat=container.settings.stalled_worker_seconds
            )
            jobs = [await container.job_admin.get_job(i) for i, _ in running]
            found = [j for j in jobs if j]
        else:
            found = await ListJobs(container.job_admin)(status=status, queue=queue, limit=limit)
        click.echo(f"{'id':>8}  {'status':<9} {'try':>3}  {'queue':<12} {'task':<40} last error")
        for job in found:
            click.echo(_line(job))

    with_container(action, open_queue=True)


@jobs.command()
@click.argument("job_id", type=JOB_ID)
def show(job_id: int) -> None:
    """Show one job with every recorded failure."""

    async def action(container: Container) -> None:
        try:
            detail = await ShowJob(container.job_admin)(job_id)
        except NotFound as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(_line(detail.job))
        click.echo(f"args: {dict(detail.job.args)}")
        for failure in detail.failures:
            click.echo(
                f"- attempt {failure.attempt} at {failure.failed_at:%Y-%m-%d %H:%M:%S}Z: "
                f"{failure.error_type}: {failure.error} [{failure.traceback_digest[:12]}]"
            )

    with_container(action, open_queue=True)


@jobs.command()
@click.argument("job_id", type=JOB_ID)
def retry(job_id: int) -> None:
    """Put a failed job back in its queue."""

    async def action(container: Container) -> None:
        async with container.uow.maintenance() as uow:
            retried = await RetryJob(container.job_admin, uow.audit)(job_id, actor=operator())
            await uow.commit()
        if not retried:
            raise click.ClickException(f"job {job_id} is not failed; nothing to retry")
        click.echo(f"job {job_id} queued again")

    with_container(action, open_queue=True)


@jobs.command()
@click.argument("job_id", type=JOB_ID)
def cancel(job_id: int) -> None:
    """Cancel a job that has not started."""

    async def action(container: Container) -> None:
        async with container.uow.maintenance() as uow:
            cancelled = await CancelJob(container.job_admin, uow.audit)(job_id, actor=operator())
            await uow.commit()
        if not cancelled:
            raise click.ClickException(f"job {job_id} cannot be cancelled (not waiting)")
        click.echo(f"job {job_id} cancelled")

    with_container(action, open_queue=True)
