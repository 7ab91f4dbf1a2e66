"""`/api/v1/shop`: the authenticated shop's own settings."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, patch
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException, ValidationException
from litestar.params import JSONBody
from sqlalchemy.exc import IntegrityError

from domain.messages import SMART_SENDING_MAX_HOURS, SendingPolicy
from domain.quiet_hours import next_send_time
from domain.shops import SUPPORT_EMAIL, Shop
from infrastructure.settings import SENDER_PATTERN
from interfaces.bootstrap import Container
from interfaces.http.session import CurrentShop


class ShopView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    domain: str
    name: str
    currency: str
    timezone: str
    country: str
    installed: bool

    @classmethod
    def of(cls, shop: Shop) -> ShopView:
        return cls(
            id=shop.id,
            domain=shop.domain,
            name=shop.name,
            currency=shop.currency,
            timezone=shop.timezone,
            country=shop.country,
            installed=shop.installed,
        )


# Shaped like an address, free of braces (reply placeholders) and of control characters
# (Postgres refuses a NUL; the rest would go out in every HELP reply); empty clears it.
_ADDRESS_CHAR = r"[^@\s{}\x00-\x1f\x7f]"
SUPPORT_EMAIL_PATTERN = rf"^(?:{_ADDRESS_CHAR}+@{_ADDRESS_CHAR}+\.{_ADDRESS_CHAR}+)?$"


# Text that goes out in SMS: line breaks are fine (GSM-7 has them), other control
# characters are not (Postgres refuses a NUL; a BEL or an escape code would reach phones).
SMS_TEXT_PATTERN = r"^[^\x00-\x09\x0b\x0c\x0e-\x1f\x7f]*$"


class QuietHoursIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    start: Annotated[str, msgspec.Meta(pattern=r"^\d{2}:\d{2}$")]
    end: Annotated[str, msgspec.Meta(pattern=r"^\d{2}:\d{2}$")]


# The domain's bounds, stated here too so that the OpenAPI document shows them.
SmartSendingHours = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=SMART_SENDING_MAX_HOURS,
        description="Least hours between two marketing texts to one contact (0 = off); "
        "a marketing text sooner is recorded as skipped",
    ),
]


class MessagingSettings(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True
):
    """Every field optional: a PATCH changes only what it names."""

    quiet_hours: QuietHoursIn | None = None
    cap_count: int | None = None
    cap_window_hours: int | None = None
    smart_sending_hours: SmartSendingHours | None = None
    footer: Annotated[str, msgspec.Meta(max_length=80, pattern=SMS_TEXT_PATTERN)] | None = None
    help_text: Annotated[str, msgspec.Meta(max_length=300, pattern=SMS_TEXT_PATTERN)] | None = None
    sender: Annotated[str, msgspec.Meta(max_length=16)] | None = None
    opt_out_words: (
        Annotated[
            list[Annotated[str, msgspec.Meta(max_length=30, pattern=SMS_TEXT_PATTERN)]],
            msgspec.Meta(max_length=20),
        ]
        | None
    ) = None
    transactional_bypass_quiet_hours: bool | None = None
    transactional_requires_subscription: bool | None = None
    double_opt_in: bool | None = None
    # Named in HELP replies; without it they name the shop's domain.
    support_email: (
        Annotated[str, msgspec.Meta(max_length=100, pattern=SUPPORT_EMAIL_PATTERN)] | None
    ) = None


class SettingsView(msgspec.Struct, frozen=True):
    quiet_hours: dict[str, str]
    messaging: dict[str, object]
    double_opt_in: bool
    support_email: str | None

    @classmethod
    def of(cls, shop: Shop) -> SettingsView:
        policy = SendingPolicy.from_settings(shop.settings)
        quiet = policy.quiet_hours
        return cls(
            quiet_hours={
                "start": quiet.quiet_start.strftime("%H:%M"),
                "end": quiet.quiet_end.strftime("%H:%M"),
            },
            messaging={
                "cap_count": policy.cap_count,
                "cap_window_hours": int(policy.cap_window.total_seconds() // 3600),
                "smart_sending_hours": int(policy.smart_sending.total_seconds() // 3600),
                "footer": policy.footer,
                "help_text": policy.help_text,
                "sender": policy.sender,
                "opt_out_words": list(policy.opt_out_words),
                "transactional_bypass_quiet_hours": policy.transactional_bypass_quiet_hours,
                "transactional_requires_subscription": policy.transactional_requires_subscription,
            },
            double_opt_in=bool(shop.settings.get("double_opt_in", True)),
            support_email=shop.support_email,
        )


class ShopController(Controller):
    path = "/shop"
    tags = ["shop"]

    @get("/", summary="The shop the session token belongs to")
    async def get_shop(self, shop: CurrentShop) -> ShopView:
        return ShopView.of(shop)

    @get("/settings", summary="Sending settings: quiet hours, cap, footer, sender, keywords")
    async def get_settings(self, shop: CurrentShop) -> SettingsView:
        return SettingsView.of(shop)

    @patch("/settings", summary="Change sending settings (only the fields given)")
    async def update_settings(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        data: JSONBody[MessagingSettings],
    ) -> SettingsView:
        _validate(merge_settings(shop.settings, data))
        async with container.uow.for_shop(shop.id) as uow:
            current = await uow.shops.get(shop.id, for_update=True)
            if current is None:
                raise NotFoundException(detail="shop not found")
            current.settings = merge_settings(current.settings, data)
            try:
                await uow.shops.save(current)
                await uow.commit()
            except IntegrityError:
                raise ClientException(
                    status_code=409, detail="another shop already sends from this number"
                ) from None
        return SettingsView.of(current)


def _validate(settings: Mapping[str, Any]) -> None:
    """Refuse settings the pipeline could not apply, before anything is saved."""
    policy = SendingPolicy.from_settings(settings)
    # A shop window that never meets the legal one would hold marketing forever.
    next_send_time(
        datetime.now(UTC), "UTC", country=None, subdivision=None, shop=policy.quiet_hours
    )


# Settings of the shop as a whole, kept beside `messaging` rather than in it.
_SHOP_WIDE = ("double_opt_in", SUPPORT_EMAIL)


def merge_settings(settings: Mapping[str, Any], patch_: MessagingSettings) -> dict[str, Any]:
    merged = dict(settings)
    changes = msgspec.structs.asdict(patch_)
    quiet = changes.pop("quiet_hours")
    if quiet is not None:
        merged["quiet_hours"] = {"start": quiet.start, "end": quiet.end}
    for key in _SHOP_WIDE:
        value = changes.pop(key)
        if value is not None:
            merged[key] = value
    messaging = dict(merged.get("messaging") or {})
    for key, value in changes.items():
        if value is not None:
            messaging[key] = _sender(value) if key == "sender" else value
    merged["messaging"] = messaging
    return merged


def _sender(value: str) -> str:
    """A number is kept as +digits (how inbound texts name it); a name as given."""
    value = value.strip()
    if not re.fullmatch(SENDER_PATTERN, value):
        raise ValidationException(
            detail="sender must be 3-11 letters/digits or a phone number of 3-14 digits"
        )
    digits = value.lstrip("+")
    return f"+{digits}" if digits.isdigit() else value
