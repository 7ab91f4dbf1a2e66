"""Failure records: procrastinate keeps neither error nor traceback, so we do."""

from __future__ import annotations

from datetime import datetime

from advanced_alchemy.base import IdentityBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column


class JobFailureModel(IdentityBase):
    __tablename__ = "job_failures"
    __table_args__ = (Index("ix_job_failures_job", "job_id", "failed_at"),)

    job_id: Mapped[int] = mapped_column(BigInteger)
    task: Mapped[str] = mapped_column(String(255))
    queue: Mapped[str] = mapped_column(String(255))
    attempt: Mapped[int] = mapped_column(Integer)
    will_retry: Mapped[bool]
    error_type: Mapped[str] = mapped_column(String(255))
    error: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str] = mapped_column(Text)
    traceback_digest: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=func.now()
    )
