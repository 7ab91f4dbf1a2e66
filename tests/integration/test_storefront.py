"""Storefront pages through the app proxy: sign-up, confirmation, unsubscribe."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from application.contacts.record_consent import ConsentChange, RecordConsent
from domain.consent import ConsentSource, ConsentState
from domain.messages import MessageStatus
from interfaces.http.app import create_app
from interfaces.http.storefront import unsubscribe_link
from tests.conftest import add_shop
from tests.support.http import client
from tests.support.messaging import add_contacts, fund
from tests.support.shopify import proxy_path

pytestmark = pytest.mark.usefixtures("clean_db")
OVERSIZED = b"(one byte more than the settings allow)"


async def _csrf(http, shop) -> str:
    page = await http.get(proxy_path("/signup", shop))
    assert page.status_code == 200 and '<label for="phone">' in page.text
    # sms.md §6: the sign-up links the store's terms and privacy policy.
    assert '<a href="/policies/terms-of-service">Terms of Service</a>' in page.text
    assert '<a href="/policies/privacy-policy">Privacy Policy</a>' in page.text
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


async def _post_signup(http, shop, **form):
    return await http.post(
        proxy_path("/signup", shop),
        data=form,
        headers={"X-Forwarded-For": "203.0.113.7", "User-Agent": "TestBrowser"},
    )


async def test_signed_signup_with_csrf_creates_a_pending_contact_with_the_wording(container):
    shop = await add_shop(container)
    await fund(container, shop, 100)
    async with client(create_app(container)) as http:
        csrf = await _csrf(http, shop)
        response = await _post_signup(http, shop, phone="(415) 555-0132", consent="yes", csrf=csrf)
    assert response.status_code == 200 and "reply Y" in response.text
    async with container.uow.for_shop(shop.id) as uow:
        contact = await uow.contacts.find(phone="+14155550132")
        [event] = await uow.consent.history(contact.id)
    assert contact.consent_state is ConsentState.PENDING
    assert event.source is ConsentSource.STOREFRONT_FORM
    assert shop.name in event.wording and "STOP" in event.wording
    assert "Privacy Policy (/policies/privacy-policy)" in event.wording, "the links shown"
    assert event.user_agent == "TestBrowser" and event.ip_hash and "203.0.113" not in event.ip_hash
    async with container.uow.for_shop(shop.id) as uow:
        [request] = await uow.messages.page(limit=5)
    assert (request.source, request.status, request.contact_id) == (
        "double_opt_in",
        MessageStatus.QUEUED,
        contact.id,
    )
    link = re.search(r"https://(\S+)/apps/sms/confirm\?t=(\S+)", request.text)
    assert "reply Y" in request.text and link.group(1) == shop.domain
    assert container.tokens.verify("confirm", link.group(2)) == str(contact.id)


async def test_bad_phone_or_missing_consent_rerenders_the_form_with_the_error(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        csrf = await _csrf(http, shop)
        bad_phone = await _post_signup(http, shop, phone="12", consent="yes", csrf=csrf)
        no_box = await _post_signup(http, shop, phone="(415) 555-0132", csrf=csrf)
    assert bad_phone.status_code == 422 and 'role="alert"' in bad_phone.text
    assert "phone" in bad_phone.text and 'value="12"' in bad_phone.text
    assert no_box.status_code == 422 and "tick the box" in no_box.text


async def test_missing_signature_bad_csrf_and_too_many_posts_are_refused(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        unsigned = await http.post(
            "/proxy/signup", data={"phone": "+14155550132", "consent": "yes"}
        )
        bad_csrf = await _post_signup(
            http, shop, phone="+14155550132", consent="yes", csrf="forged"
        )
        csrf = await _csrf(http, shop)
        statuses = [
            (await _post_signup(http, shop, phone="12", consent="yes", csrf=csrf)).status_code
            for _ in range(6)
        ]
    assert unsigned.status_code == 401
    assert bad_csrf.status_code == 403
    assert statuses[:5] == [422] * 5 and statuses[5] == 429
    async with container.uow.maintenance() as uow:
        assert await uow.session.scalar(text("SELECT count(*) FROM contacts")) == 0


async def _pending_contact(http, container, shop):
    csrf = await _csrf(http, shop)
    await _post_signup(http, shop, phone="+14155550132", consent="yes", csrf=csrf)
    async with container.uow.for_shop(shop.id) as uow:
        return await uow.contacts.find(phone="+14155550132")


async def _state(container, shop, contact_id) -> ConsentState:
    async with container.uow.for_shop(shop.id) as uow:
        return (await uow.contacts.get(contact_id)).consent_state


async def test_opening_the_confirmation_link_does_not_confirm_until_the_button(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        contact = await _pending_contact(http, container, shop)
        confirm = container.tokens.sign("confirm", str(contact.id), ttl_seconds=60)
        # What a link preview or a carrier's URL scanner does with the link: a plain GET.
        page = await http.get(
            proxy_path("/confirm", shop, t=confirm),
            headers={"User-Agent": "facebookexternalhit/1.1"},
        )
        after_get = await _state(container, shop, contact.id)
        confirmed = await http.post(proxy_path("/confirm", shop), data={"t": confirm})
    assert after_get is ConsentState.PENDING, "a GET alone confirmed the sign-up"
    assert page.status_code == 200 and "<button" in page.text and f'value="{confirm}"' in page.text
    assert confirmed.status_code == 200 and "signed up" in confirmed.text
    assert await _state(container, shop, contact.id) is ConsentState.SUBSCRIBED


async def test_a_confirmation_link_pressed_after_a_stop_does_not_resubscribe(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        contact = await _pending_contact(http, container, shop)
        confirm = container.tokens.sign("confirm", str(contact.id), ttl_seconds=60)
        async with container.uow.for_shop(shop.id) as uow:
            stop = ConsentChange(
                contact.id, ConsentState.UNSUBSCRIBED, ConsentSource.KEYWORD, "shopper"
            )
            await RecordConsent(container.clock)(uow, stop)
            await uow.commit()
        pressed = await http.post(proxy_path("/confirm", shop), data={"t": confirm})
    assert pressed.status_code == 409
    assert await _state(container, shop, contact.id) is ConsentState.UNSUBSCRIBED


async def test_confirmation_and_unsubscribe_links_change_consent_only_by_a_click(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        contact = await _pending_contact(http, container, shop)
        confirm = container.tokens.sign("confirm", str(contact.id), ttl_seconds=60)
        confirmed = await http.post(proxy_path("/confirm", shop), data={"t": confirm})
        link = unsubscribe_link(container, "", contact.id)
        token = link.split("t=", 1)[1]
        page = await http.get(proxy_path("/unsubscribe", shop, t=token))
        still = await _state(container, shop, contact.id)
        done = await http.post(proxy_path("/unsubscribe", shop), data={"t": token})
        forged_page = await http.get(proxy_path("/confirm", shop, t=token))
        forged = await http.post(proxy_path("/confirm", shop), data={"t": token})
    async with container.uow.for_shop(shop.id) as uow:
        history = [e.new_state for e in await uow.consent.history(contact.id)]
    assert confirmed.status_code == 200 and still is ConsentState.SUBSCRIBED
    assert page.status_code == 200 and "<button" in page.text
    assert done.status_code == 200 and "unsubscribed" in done.text
    assert (forged_page.status_code, forged.status_code) == (400, 400), (
        "an unsubscribe token is not a confirmation token"
    )
    assert history == [ConsentState.PENDING, ConsentState.SUBSCRIBED, ConsentState.UNSUBSCRIBED]


async def test_back_in_stock_request_is_stored_once_with_its_wording(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        page = await http.get(proxy_path("/back-in-stock", shop, variant_id="4455"))
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        form = {"phone": "(415) 555-0132", "variant_id": "4455", "agree": "yes", "csrf": csrf}
        first = await http.post(proxy_path("/back-in-stock", shop), data=form)
        again = await http.post(proxy_path("/back-in-stock", shop), data=form)
        no_box = await http.post(proxy_path("/back-in-stock", shop), data={**form, "agree": ""})
    assert page.status_code == 200 and 'value="4455"' in page.text
    assert first.status_code == 200 and again.status_code == 200
    assert no_box.status_code == 422 and "tick the box" in no_box.text
    async with container.uow.for_shop(shop.id) as uow:
        contact = await uow.contacts.find(phone="+14155550132")
        waiting = await uow.back_in_stock.waiting(4455)
        wording = await uow.session.scalar(text("SELECT wording FROM back_in_stock_requests"))
    assert waiting == [contact.id]
    assert contact.consent_state is ConsentState.UNKNOWN, (
        "an alert request is not marketing consent"
    )
    assert shop.name in wording


@pytest.mark.parametrize("variant", ["99999999999999999999", "²", "-4", ""])
async def test_back_in_stock_with_an_unusable_variant_re_renders_the_form(container, variant):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        page = await http.get(proxy_path("/back-in-stock", shop, variant_id="4455"))
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        form = {"phone": "(415) 555-0132", "variant_id": variant, "agree": "yes", "csrf": csrf}
        response = await http.post(proxy_path("/back-in-stock", shop), data=form)
    assert response.status_code == 422 and "<form" in response.text


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "status"),
    [
        ("GET", "/back-in-stock", {"variant_id": "not-a-number"}, None, 400),
        ("GET", "/no-such-page", {}, None, 404),
        ("PUT", "/signup", {}, None, 405),
        ("POST", "/signup", {}, b"--x\r\nbroken", 400),
        ("POST", "/signup", {}, OVERSIZED, 413),
    ],
)
async def test_errors_behind_the_proxy_are_pages_never_problem_json(
    container, method, path, query, body, status
):
    shop = await add_shop(container)
    if body is OVERSIZED:
        body = b"-" * (container.settings.max_request_body_bytes + 1)
    headers = {"content-type": "multipart/form-data; boundary=x"} if body else {}
    async with client(create_app(container)) as http:
        response = await http.request(
            method, proxy_path(path, shop, **query), content=body, headers=headers
        )
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html"), response.text[:200]
    assert response.headers["cache-control"] == "no-store, private"
    assert "<h1>" in response.text and shop.name not in response.text


async def _double_opt_in_texts(container, shop) -> list[MessageStatus]:
    async with container.uow.for_shop(shop.id) as uow:
        found = await uow.messages.page(limit=50)
    return sorted(m.status for m in found if m.source == "double_opt_in")


async def test_signing_a_number_up_again_does_not_text_it_again(container):
    # Anyone can type any number into the form: re-submitting it (from many addresses, so
    # the per-address limit never bites) must not make the shop text that phone each time.
    shop = await add_shop(container)
    await fund(container, shop, 1000)
    async with client(create_app(container)) as http:
        csrf = await _csrf(http, shop)
        for address in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
            response = await http.post(
                proxy_path("/signup", shop),
                data={"phone": "+14155550132", "consent": "yes", "csrf": csrf},
                headers={"X-Forwarded-For": address},
            )
            assert response.status_code == 200 and "reply Y" in response.text
    async with container.uow.for_shop(shop.id) as uow:
        contact = await uow.contacts.find(phone="+14155550132")
        history = await uow.consent.history(contact.id)
    assert [e.new_state for e in history] == [ConsentState.PENDING] * 3, "each request on record"
    assert await _double_opt_in_texts(container, shop) == sorted(
        [MessageStatus.QUEUED, MessageStatus.DUPLICATE, MessageStatus.DUPLICATE]
    )


async def test_a_sign_up_after_a_stop_asks_to_confirm_once_more(container):
    shop = await add_shop(container)
    await fund(container, shop, 1000)
    async with client(create_app(container)) as http:
        contact = await _pending_contact(http, container, shop)
        async with container.uow.for_shop(shop.id) as uow:
            stop = ConsentChange(
                contact.id, ConsentState.UNSUBSCRIBED, ConsentSource.KEYWORD, "shopper"
            )
            await RecordConsent(container.clock)(uow, stop)
            await uow.commit()
        csrf = await _csrf(http, shop)
        again = await _post_signup(http, shop, phone="+14155550132", consent="yes", csrf=csrf)
    assert again.status_code == 200
    assert await _state(container, shop, contact.id) is ConsentState.PENDING
    assert await _double_opt_in_texts(container, shop) == [MessageStatus.QUEUED] * 2


async def _single_opt_in_shop_and_a_stopped_number(container):
    shop = await add_shop(container)
    await fund(container, shop, 1000)
    async with container.uow.for_shop(shop.id) as uow:
        stored = await uow.shops.get(shop.id, for_update=True)
        stored.settings = {**stored.settings, "double_opt_in": False}
        await uow.shops.save(stored)
        await uow.commit()
    [stopped] = await add_contacts(
        container, shop, ["+14155550132"], state=ConsentState.UNSUBSCRIBED
    )
    return shop, stopped


async def test_without_double_opt_in_a_stopped_number_must_still_confirm_from_the_phone(
    container,
):
    # The form proves nothing about who owns a number: with single opt-in, anyone could
    # type in the number of a shopper who texted STOP and put it back on the marketing list.
    shop, stopped = await _single_opt_in_shop_and_a_stopped_number(container)
    async with client(create_app(container)) as http:
        csrf = await _csrf(http, shop)
        fresh = await _post_signup(http, shop, phone="+14155550133", consent="yes", csrf=csrf)
        again = await _post_signup(http, shop, phone="+14155550132", consent="yes", csrf=csrf)
    async with container.uow.for_shop(shop.id) as uow:
        newcomer = await uow.contacts.find(phone="+14155550133")
    assert fresh.status_code == 200 and "signed up" in fresh.text
    assert newcomer.consent_state is ConsentState.SUBSCRIBED, "single opt-in, as the shop chose"
    assert again.status_code == 200 and "reply Y" in again.text
    assert await _state(container, shop, stopped.id) is ConsentState.PENDING
    assert await _double_opt_in_texts(container, shop) == [MessageStatus.QUEUED]


async def test_without_double_opt_in_submitting_a_stopped_number_twice_still_needs_a_reply(
    container,
):
    # The first submission only makes a stopped number pending; a second must not then
    # count as the single opt-in the shop accepts from newcomers, or anyone could lift a
    # STOP by sending the form twice.
    shop, stopped = await _single_opt_in_shop_and_a_stopped_number(container)
    async with client(create_app(container)) as http:
        csrf = await _csrf(http, shop)
        first = await _post_signup(http, shop, phone="+14155550132", consent="yes", csrf=csrf)
        second = await _post_signup(http, shop, phone="+14155550132", consent="yes", csrf=csrf)
    assert first.status_code == 200 and "reply Y" in first.text
    assert second.status_code == 200 and "reply Y" in second.text
    assert await _state(container, shop, stopped.id) is ConsentState.PENDING
