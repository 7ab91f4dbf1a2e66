"""Storefront pages behind the app proxy: sign-up, back in stock, confirmation, unsubscribe.

Pages work without JavaScript. Shopify strips cookies through the proxy, so the form's
CSRF token is a signed, expiring token bound to the shop; posts are rate limited per
shop and (hashed) client address.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from application.automations.back_in_stock_signup import BACK_IN_STOCK_WORDING, BackInStockSignUp
from application.contacts.record_consent import ConsentChange, RecordConsent
from application.contacts.storefront_signup import (
    POLICY_LINKS,
    SignUp,
    consent_wording,
    recorded_wording,
)
from application.events.payloads import shopify_id
from application.ports import RateLimit
from domain.consent import ConsentSource, ConsentState, InvalidConsentTransition, OptInLevel
from domain.errors import InvalidValue
from domain.shops import Shop
from infrastructure.crypto.signed_tokens import TokenError
from interfaces.bootstrap import Container
from interfaces.http.proxy import NO_STORE

log = logging.getLogger("blossom.storefront")

SIGNUP_LIMIT = RateLimit(rate=5, period_seconds=600, burst=5)
CSRF_TTL = 3600
CONFIRM_TTL = 7 * 86400
UNSUBSCRIBE_TTL = 365 * 86400


def _page(name: str, status: int = 200, **context: Any) -> Template:
    return Template(
        template_name=f"proxy/{name}.html", status_code=status, headers=NO_STORE, context=context
    )


def _message(shop: Shop, heading: str, message: str, status: int = 200) -> Template:
    return _page("message", status, shop_name=shop.name, heading=heading, message=message)


def client_address(request: Request[Any, Any, Any]) -> str:
    """The shopper's address as Shopify's proxy forwards it, else the peer's."""
    forwarded = request.headers.get("x-forwarded-for", "")
    first = forwarded.split(",")[0].strip()
    return first or (request.client.host if request.client else "unknown")


def unsubscribe_link(container: Container, path_prefix: str, contact_id: uuid.UUID) -> str:
    token = container.tokens.sign("unsubscribe", str(contact_id), ttl_seconds=UNSUBSCRIBE_TTL)
    return f"{path_prefix}/unsubscribe?t={token}"


@dataclass(frozen=True, slots=True)
class _LinkAction:
    """A consent change a shopper makes from a link we texted them.

    Link previews (iMessage, RCS) and carrier URL scanners fetch such links on their own,
    so the link only opens a page with a button; the button's POST makes the change. The
    signed per-contact token rides in the form, so nobody without the link can post it.
    """

    purpose: str  # of the signed token in the link
    heading: str  # "{shop}" is replaced by the shop's name
    button: str
    expired: str


CONFIRM = _LinkAction(
    "confirm", "Confirm texts from {shop}", "Yes, text me", "Please sign up again."
)
UNSUBSCRIBE = _LinkAction(
    "unsubscribe",
    "Stop texts from {shop}",
    "Unsubscribe",
    "Reply STOP to any text to unsubscribe.",
)


class StorefrontController(Controller):
    path = "/"
    tags = ["storefront"]

    @get("/signup", summary="The SMS sign-up form")
    async def signup_form(
        self, request: Request[Any, Any, Any], container: NamedDependency[Container]
    ) -> Template:
        return _form(container, request.state.shop)

    @post("/signup", summary="Sign up for texts", status_code=200)
    async def signup(
        self, request: Request[Any, Any, Any], container: NamedDependency[Container]
    ) -> Template:
        shop: Shop = request.state.shop
        form = await request.form()
        phone = str(form.get("phone") or "")[:40]
        refusal = await _refuse_post(container, request, shop, form)
        if refusal:
            return _form(container, shop, phone, refusal[0], status=refusal[1])
        address_hash = _address_hash(container, request)
        double_opt_in = bool(shop.settings.get("double_opt_in", True))
        signup = container.storefront_signup()
        try:
            async with container.uow.for_shop(shop.id) as uow:
                result = await signup(
                    uow,
                    shop,
                    SignUp(
                        phone=phone,
                        consented=form.get("consent") == "yes",
                        wording=recorded_wording(shop.name, shop.settings),
                        ip_hash=address_hash,
                        user_agent=request.headers.get("user-agent"),
                        double_opt_in=double_opt_in,
                    ),
                )
                await uow.commit()
        except (InvalidValue, InvalidConsentTransition) as exc:
            return _form(container, shop, phone, str(exc), status=422)
        # Pending even when the shop skips confirmation: a number that opted out must confirm.
        # No event (already subscribed): the page a newcomer would see, telling nothing.
        event = result.event
        if (event.new_state is ConsentState.PENDING) if event else double_opt_in:
            return _message(shop, "Almost there", "Check your phone and reply Y to confirm.")
        return _message(shop, "You're signed up", f"You'll get texts from {shop.name}.")

    @get("/back-in-stock", summary="Ask for a text when a variant is back in stock")
    async def back_in_stock_form(
        self,
        request: Request[Any, Any, Any],
        container: NamedDependency[Container],
        variant_id: FromQuery[int] = 0,
    ) -> Template:
        return _stock_form(container, request.state.shop, variant_id)

    @post("/back-in-stock", summary="Store a back-in-stock request", status_code=200)
    async def back_in_stock(
        self, request: Request[Any, Any, Any], container: NamedDependency[Container]
    ) -> Template:
        shop: Shop = request.state.shop
        form = await request.form()
        phone = str(form.get("phone") or "")[:40]
        variant_id = shopify_id(form.get("variant_id")) or 0  # 0: "choose a variant"
        refusal = await _refuse_post(container, request, shop, form)
        if refusal:
            return _stock_form(container, shop, variant_id, phone, *refusal)
        try:
            async with container.uow.for_shop(shop.id) as uow:
                await BackInStockSignUp(container.contact_for_phone())(
                    uow,
                    phone=phone,
                    variant_id=variant_id,
                    agreed=form.get("agree") == "yes",
                    wording=BACK_IN_STOCK_WORDING.replace("{shop}", shop.name),
                )
                await uow.commit()
        except InvalidValue as exc:
            return _stock_form(container, shop, variant_id, phone, str(exc), 422)
        return _message(shop, "We'll text you", "You'll get one text when it's back in stock.")

    @get("/confirm", summary="Confirmation page reached by the link in the 'reply Y' text")
    async def confirm_page(
        self,
        request: Request[Any, Any, Any],
        container: NamedDependency[Container],
        t: FromQuery[str] = "",
    ) -> Template:
        return _link_page(container, request.state.shop, CONFIRM, t)

    @post("/confirm", summary="Confirm a pending sign-up", status_code=200)
    async def confirm(
        self, request: Request[Any, Any, Any], container: NamedDependency[Container]
    ) -> Template:
        shop: Shop = request.state.shop
        contact_id = await _posted_contact(container, request, CONFIRM)
        if contact_id is None:
            return _expired(shop, CONFIRM)
        state = await _change(
            container,
            shop,
            contact_id,
            ConsentState.SUBSCRIBED,
            ConsentSource.DOUBLE_OPT_IN,
            OptInLevel.CONFIRMED_OPT_IN,
        )
        if state is ConsentState.SUBSCRIBED:
            return _message(shop, "You're signed up", f"You'll get texts from {shop.name}.")
        return _message(shop, "Nothing to confirm", "This sign-up can no longer be confirmed.", 409)

    @get("/unsubscribe", summary="Unsubscribe page reached by a signed per-contact link")
    async def unsubscribe_page(
        self,
        request: Request[Any, Any, Any],
        container: NamedDependency[Container],
        t: FromQuery[str] = "",
    ) -> Template:
        return _link_page(container, request.state.shop, UNSUBSCRIBE, t)

    @post("/unsubscribe", summary="Unsubscribe", status_code=200)
    async def unsubscribe(
        self, request: Request[Any, Any, Any], container: NamedDependency[Container]
    ) -> Template:
        shop: Shop = request.state.shop
        contact_id = await _posted_contact(container, request, UNSUBSCRIBE)
        if contact_id is None:
            return _expired(shop, UNSUBSCRIBE)
        await _change(
            container, shop, contact_id, ConsentState.UNSUBSCRIBED, ConsentSource.STOREFRONT_FORM
        )
        return _message(
            shop, "You're unsubscribed", f"You won't get marketing texts from {shop.name}."
        )


def _form(
    container: Container, shop: Shop, phone: str = "", error: str | None = None, status: int = 200
) -> Template:
    csrf = container.tokens.sign("csrf", str(shop.id), ttl_seconds=CSRF_TTL)
    return _page(
        "signup",
        status,
        shop_name=shop.name,
        wording=consent_wording(shop.name, shop.settings),
        policy_links=POLICY_LINKS,
        csrf=csrf,
        phone=phone,
        error=error,
    )


def _stock_form(
    container: Container,
    shop: Shop,
    variant_id: int,
    phone: str = "",
    error: str | None = None,
    status: int = 200,
) -> Template:
    return _page(
        "back_in_stock",
        status,
        shop_name=shop.name,
        variant_id=variant_id,
        phone=phone,
        wording=BACK_IN_STOCK_WORDING.replace("{shop}", shop.name),
        error=error,
        csrf=container.tokens.sign("csrf", str(shop.id), ttl_seconds=CSRF_TTL),
    )


def _address_hash(container: Container, request: Request[Any, Any, Any]) -> str:
    return container.blind_index.digest(client_address(request), purpose="ip")


async def _refuse_post(
    container: Container, request: Request[Any, Any, Any], shop: Shop, form: Any
) -> tuple[str, int] | None:
    """Why a form post is refused (message, status), or None: CSRF, then the rate limit."""
    if not _csrf_ok(container, shop, str(form.get("csrf") or "")):
        return "This form expired. Please try again.", 403
    key = f"storefront:{shop.id}:{_address_hash(container, request)}"
    if not (await container.rate_limiter.acquire(key, SIGNUP_LIMIT)).allowed:
        return "Too many attempts. Please wait a few minutes.", 429
    return None


def _csrf_ok(container: Container, shop: Shop, token: str) -> bool:
    try:
        return container.tokens.verify("csrf", token) == str(shop.id)
    except TokenError:
        return False


def _token(container: Container, purpose: str, token: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(container.tokens.verify(purpose, token))
    except (TokenError, ValueError):
        return None


def _link_page(container: Container, shop: Shop, action: _LinkAction, token: str) -> Template:
    if _token(container, action.purpose, token) is None:
        return _expired(shop, action)
    heading = action.heading.replace("{shop}", shop.name)
    return _page("link_action", heading=heading, button=action.button, token=token)


def _expired(shop: Shop, action: _LinkAction) -> Template:
    return _message(shop, "Link expired", action.expired, 400)


async def _posted_contact(
    container: Container, request: Request[Any, Any, Any], action: _LinkAction
) -> uuid.UUID | None:
    return _token(container, action.purpose, str((await request.form()).get("t") or ""))


async def _change(
    container: Container,
    shop: Shop,
    contact_id: uuid.UUID,
    state: ConsentState,
    source: ConsentSource,
    opt_in_level: OptInLevel | None = None,
) -> ConsentState | None:
    async with container.uow.for_shop(shop.id) as uow:
        contact = await uow.contacts.get(contact_id)
        if contact is None:
            return None
        try:
            await RecordConsent(container.clock)(
                uow,
                ConsentChange(
                    contact_id=contact_id,
                    new_state=state,
                    source=source,
                    actor="shopper",
                    opt_in_level=opt_in_level,
                ),
            )
        except InvalidConsentTransition as exc:
            log.info("storefront consent change refused", extra={"reason": str(exc)})
            return contact.consent_state
        await uow.commit()
    return state
