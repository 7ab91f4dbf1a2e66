"""`/api/v1/gdpr`: the shop's GDPR requests, a merchant's own data request, and exports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from application.gdpr.read_requests import DownloadBundle, ListRequests
from application.gdpr.start_data_request import DataRequestCommand
from domain.gdpr import GdprRequest, RequestKind, RequestStatus
from interfaces.bootstrap import Container
from interfaces.http.session import CurrentShop


class SubjectView(msgspec.Struct, frozen=True):
    shopify_customer_id: int | None
    phone: str | None
    email: str | None
    orders: list[int]


class GdprRequestView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    kind: str
    status: str
    source: str
    subject: SubjectView  # empty once the customer has been redacted
    shopify_request_id: str | None
    received_at: datetime
    due_at: datetime
    fulfilled_at: datetime | None
    error: str | None
    downloadable: bool

    @classmethod
    def of(cls, r: GdprRequest) -> GdprRequestView:
        return cls(
            id=r.id,
            kind=r.kind.value,
            status=r.status.value,
            source=r.source.value,
            subject=SubjectView(
                shopify_customer_id=r.subject.shopify_customer_id,
                phone=r.subject.phone,
                email=r.subject.email,
                orders=list(r.subject.orders),
            ),
            shopify_request_id=r.shopify_request_id,
            received_at=r.received_at,
            due_at=r.due_at,
            fulfilled_at=r.fulfilled_at,
            error=r.error,
            downloadable=r.kind is RequestKind.DATA_REQUEST
            and r.status is RequestStatus.FULFILLED
            and r.has_bundle,
        )


class GdprRequestPage(msgspec.Struct, frozen=True):
    items: list[GdprRequestView]
    next_cursor: str | None


class DataRequestIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Name the customer by any of these; at least one is required."""

    phone: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    email: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    shopify_customer_id: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)] | None = None


class GdprController(Controller):
    path = "/gdpr"
    tags = ["gdpr"]

    @get("/requests", summary="The shop's GDPR requests, newest first")
    async def list_requests(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
        cursor: FromQuery[uuid.UUID | None] = None,
    ) -> GdprRequestPage:
        found = await ListRequests(container.uow)(shop.id, limit=limit + 1, before=cursor)
        items = found[:limit]
        more = len(found) > limit
        return GdprRequestPage(
            items=[GdprRequestView.of(r) for r in items],
            next_cursor=str(items[-1].id) if more else None,
        )

    @post("/requests", summary="Export a customer's data now, on the merchant's own initiative")
    async def start_data_request(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        data: JSONBody[DataRequestIn],
    ) -> GdprRequestView:
        request = await container.start_data_request()(
            DataRequestCommand(
                shop_id=shop.id,
                phone=data.phone,
                email=data.email,
                shopify_customer_id=data.shopify_customer_id,
            )
        )
        return GdprRequestView.of(request)

    @get(
        "/requests/{request_id:uuid}/download",
        summary="The request's JSON export, as an attachment",
        response_description="The export bundle",
    )
    async def download(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        request_id: FromPath[uuid.UUID],
    ) -> Response[bytes]:
        bundle = await DownloadBundle(container.uow)(shop.id, request_id)
        return Response(
            bundle.encode(),
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="gdpr-export-{request_id}.json"',
                # A person's whole record: never kept by a browser or a proxy.
                "Cache-Control": "no-store",
            },
        )
