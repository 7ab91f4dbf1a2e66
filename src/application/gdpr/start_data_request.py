"""A merchant asks for a customer's data on their behalf: recorded and exported at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.gdpr.fulfil_request import FulfilRequest
from application.gdpr.requests import MERCHANT_ACTOR, ReceiveRequest
from application.ports import PhoneNumbers, UnitOfWorkFactory
from domain.contacts import normalize_email
from domain.errors import InvalidValue, NotFound
from domain.gdpr import GdprRequest, RequestKind, RequestSource, Subject


@dataclass(frozen=True, slots=True)
class DataRequestCommand:
    shop_id: uuid.UUID
    phone: str | None = None
    email: str | None = None
    shopify_customer_id: int | None = None


class StartDataRequest:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        phones: PhoneNumbers,
        receive: ReceiveRequest,
        fulfil: FulfilRequest,
    ) -> None:
        self._uows = uows
        self._phones = phones
        self._receive = receive
        self._fulfil = fulfil

    async def __call__(self, command: DataRequestCommand) -> GdprRequest:
        async with self._uows.for_shop(command.shop_id) as uow:
            shop = await uow.shops.get(command.shop_id)
            if shop is None:
                raise NotFound("shop not found")
            request = await self._receive(
                uow,
                shop.id,
                RequestKind.DATA_REQUEST,
                RequestSource.MERCHANT,
                self._subject(command, shop.country),
                actor=MERCHANT_ACTOR,
            )
            await self._fulfil(uow, request, actor=MERCHANT_ACTOR)
            await uow.commit()
        return request

    def _subject(self, command: DataRequestCommand, region: str) -> Subject:
        """A merchant's typing is checked here (a 422 now beats an empty export later)."""
        phone = (command.phone or "").strip()
        email = normalize_email(command.email)
        if not phone and email is None and command.shopify_customer_id is None:
            raise InvalidValue("name the customer by phone, e-mail or Shopify customer id")
        return Subject(
            shopify_customer_id=command.shopify_customer_id,
            phone=self._phones.parse(phone, region).e164 if phone else None,
            email=email,
        )
