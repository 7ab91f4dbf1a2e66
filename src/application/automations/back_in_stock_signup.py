"""A shopper asks for one text when a sold-out variant is back; sent by the automations.

This is not marketing consent: the request is for one alert about one product, and the
exact wording shown is kept with it as proof.
"""

from __future__ import annotations

from application.contacts.create_contact import ContactForPhone
from application.ports import UnitOfWork
from domain.errors import InvalidValue

BACK_IN_STOCK_WORDING = (
    "Text me once at this number when this item is back in stock at {shop}. "
    "Msg & data rates may apply. Reply STOP to cancel."
)


class BackInStockSignUp:
    def __init__(self, contact_for: ContactForPhone) -> None:
        self._contact_for = contact_for

    async def __call__(
        self, uow: UnitOfWork, *, phone: str, variant_id: int, agreed: bool, wording: str
    ) -> bool:
        """True when a new request was stored, False when one was already waiting."""
        if not agreed:
            raise InvalidValue("please tick the box to get the text")
        if variant_id <= 0:
            raise InvalidValue("this product can't be watched")
        contact = await self._contact_for(uow, phone)
        return await uow.back_in_stock.add(contact.id, variant_id, wording)
