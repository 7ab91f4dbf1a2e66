"""CSV import of contacts, in batches, with progress and a per-line error report.

Columns (header row, case-insensitive): `phone` (required), `email`, `first_name`,
`last_name`, `tags` (separated by `;`), `consent` (`subscribed` or `unsubscribed`) and
`consent_proof`. A subscription is imported only with proof: where and when the shopper
agreed. Without it the contact is imported with no consent.

A failed line's reason names the column to fix and never quotes a cell: the report is
stored and shown in plain text, and a file whose columns slid would put shoppers' e-mail
addresses and phone numbers in it.
"""

from __future__ import annotations

import csv
import enum
import io
import itertools
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from application.contacts.create_contact import CreateContact, DuplicateContact, NewContact
from application.contacts.record_consent import ConsentChange, RecordConsent
from application.contacts.spreadsheet_cells import from_text
from application.ports import Clock, IdGenerator, UnitOfWork, UnitOfWorkFactory
from application.tasks import IMPORT_CONTACTS
from domain.consent import ADMIN_PROOF_KEY, ConsentSource, ConsentState, InvalidConsentTransition
from domain.errors import DomainError, InvalidValue

BATCH = 500
MAX_ERRORS = 1000
_CONSENT = {"subscribed": ConsentState.SUBSCRIBED, "unsubscribed": ConsentState.UNSUBSCRIBED}


@dataclass
class ImportReport:
    processed: int = 0
    imported: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)

    def fail(self, line: int, reason: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"line": line, "error": reason})


def read_rows(text: str) -> Iterator[tuple[int, Mapping[str, str]]]:
    """(line number, row) pairs; the header is line 1. Cells lose NUL characters, which a
    spreadsheet export can carry and Postgres cannot store."""
    reader = _reader(io.StringIO(text))
    for row in reader:
        yield reader.line_num, _cells(row)


def erase_rows(text: str, doomed: Callable[[Mapping[str, str]], bool]) -> tuple[str, int]:
    """The file with each row `doomed` picks turned into a row of empty cells on as many
    lines, and how many rows that was. Every other row keeps its position, which a resumed
    import counts rows by, and its line number, which the import reports errors by."""
    lines = list(io.StringIO(text))  # the very lines the csv reader consumes
    kept = list(lines)
    reader = _reader(iter(lines))
    start, erased = reader.line_num, 0
    for row in reader:
        if doomed(_cells(row)):
            span = [_ending(line) for line in lines[start : reader.line_num]]
            span[-1] = "," + span[-1]
            kept[start : reader.line_num] = span
            erased += 1
        start = reader.line_num
    return "".join(kept), erased


def _reader(lines: Iterator[str]) -> csv.DictReader[str]:
    reader = csv.DictReader(lines)
    reader.fieldnames = [name.strip().lower() for name in reader.fieldnames or []]
    if "phone" not in reader.fieldnames:
        raise InvalidValue("the CSV needs a header row with a phone column")
    return reader


def _cells(row: Mapping[str | None, str | None]) -> dict[str, str]:
    return {k: from_text((v or "").replace("\x00", "").strip()) for k, v in row.items() if k}


def _ending(line: str) -> str:
    return "\n" if line.endswith("\n") else ""


class ImportContacts:
    """Each batch is its own transaction: a failure loses at most one batch, and the
    report says which lines did not make it."""

    def __init__(self, create: CreateContact, record: RecordConsent) -> None:
        self._create = create
        self._record = record

    async def run(
        self,
        open_uow: Callable[[], UnitOfWork],
        rows: Iterator[tuple[int, Mapping[str, str]]],
        *,
        actor: str,
        progress: Callable[[ImportReport], Awaitable[object]] | None = None,
    ) -> ImportReport:
        report, rows = ImportReport(), iter(rows)
        while batch := list(itertools.islice(rows, BATCH)):
            async with open_uow() as uow:
                await self.batch(uow, batch, report, actor)
                await uow.commit()
            if progress:
                await progress(report)
        return report

    async def batch(
        self,
        uow: UnitOfWork,
        batch: list[tuple[int, Mapping[str, str]]],
        report: ImportReport,
        actor: str,
    ) -> None:
        """Import `batch` in the caller's transaction, adding its outcome to `report`."""
        for line, row in batch:
            if not any(row.values()):
                # Neither imported nor failed: what a spreadsheet leaves after its data,
                # and what an erasure leaves of a shopper's row (`erase_rows`).
                continue
            try:
                async with uow.savepoint():
                    await self._line(uow, row, actor)
                report.imported += 1
            except DomainError as exc:
                report.fail(line, str(exc))
            except ValueError as exc:
                # Not our wording: its text may quote the cell, and reports are stored
                # and shown in plain text.
                report.fail(line, f"a value could not be read ({type(exc).__name__})")
        report.processed += len(batch)

    async def _line(self, uow: UnitOfWork, row: Mapping[str, str], actor: str) -> None:
        consent = _CONSENT.get(row.get("consent", "").lower())
        if row.get("consent") and consent is None:
            raise InvalidValue("consent must be subscribed, unsubscribed or empty")
        proof = row.get("consent_proof", "")
        if consent is ConsentState.SUBSCRIBED and not proof:
            raise InvalidValue("a subscription needs a consent_proof (where and when they agreed)")
        try:
            contact = await self._create(
                uow,
                NewContact(
                    phone=row.get("phone", ""),
                    email=row.get("email") or None,
                    first_name=row.get("first_name") or None,
                    last_name=row.get("last_name") or None,
                    tags=tuple(t for t in row.get("tags", "").split(";") if t.strip()),
                ),
            )
        except DuplicateContact:
            raise InvalidValue("a contact with this phone number already exists") from None
        if consent is not None:
            try:
                await self._record(
                    uow,
                    ConsentChange(
                        contact_id=contact.id,
                        new_state=consent,
                        source=ConsentSource.IMPORT,
                        actor=actor,
                        evidence={ADMIN_PROOF_KEY: proof[:500]} if proof else {},
                    ),
                )
            except InvalidConsentTransition as exc:
                raise InvalidValue(str(exc)) from None


class ImportState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ContactImport:
    id: uuid.UUID
    status: ImportState
    processed: int
    imported: int
    errors: list[dict[str, object]]
    created_at: datetime
    finished_at: datetime | None
    csv_text: str | None


class StartContactImport:
    """Store the file and defer its processing, in one transaction."""

    def __init__(self, ids: IdGenerator) -> None:
        self._ids = ids

    async def __call__(self, uow: UnitOfWork, csv_text: str) -> uuid.UUID:
        next(read_rows(csv_text), None)  # refuse a file without a phone column right away
        import_id = self._ids.new_id()
        await uow.imports.create(import_id, csv_text)
        await uow.jobs.defer(
            IMPORT_CONTACTS.job({"shop_id": str(uow.shop_id), "import_id": str(import_id)})
        )
        return import_id


class RunContactImport:
    """The job: import in batches, each committed with the progress it makes, so a retry
    resumes right after the last batch written; the last attempt's failure marks the
    import failed."""

    def __init__(self, uows: UnitOfWorkFactory, importer: ImportContacts, clock: Clock) -> None:
        self._uows = uows
        self._importer = importer
        self._clock = clock

    async def __call__(
        self, shop_id: uuid.UUID, import_id: uuid.UUID, *, last_attempt: bool = False
    ) -> ImportReport | None:
        try:
            while step := await self._next_batch(shop_id, import_id):
                report, state = step
                if state is ImportState.DONE:
                    return report
            return None  # finished by an earlier attempt
        except Exception as exc:
            if last_attempt:
                await self._give_up(shop_id, import_id, exc)
            raise

    async def _next_batch(
        self, shop_id: uuid.UUID, import_id: uuid.UUID
    ) -> tuple[ImportReport, ImportState] | None:
        async with self._uows.for_shop(shop_id) as uow:
            # The file is read afresh, and its row held until the batch is written: an
            # erasure waits for the batch in flight and changes what the next one reads.
            job = await uow.imports.get(import_id, for_update=True)
            if job is None or job.csv_text is None:
                return None
            report = _saved(job)
            batch = list(
                itertools.islice(
                    read_rows(job.csv_text), report.processed, report.processed + BATCH
                )
            )
            await self._importer.batch(uow, batch, report, f"import:{import_id}")
            state = ImportState.RUNNING if len(batch) == BATCH else ImportState.DONE
            await uow.imports.update(import_id, state, report, self._clock.now())
            await uow.commit()
        return report, state

    async def _give_up(self, shop_id: uuid.UUID, import_id: uuid.UUID, exc: Exception) -> None:
        """What the last batch wrote, and why nothing more will come."""
        async with self._uows.for_shop(shop_id) as uow:
            job = await uow.imports.get(import_id, for_update=True)
            if job is None or job.csv_text is None:
                return  # finished meanwhile, by another run of the same job
            saved = _saved(job)
            saved.fail(saved.processed + 1, f"the import stopped ({type(exc).__name__})")
            await uow.imports.update(import_id, ImportState.FAILED, saved, self._clock.now())
            await uow.commit()


def _saved(job: ContactImport) -> ImportReport:
    return ImportReport(job.processed, job.imported, list(job.errors))
