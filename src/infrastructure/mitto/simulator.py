"""A stand-in `SmsGateway` for development without a Mitto key: nothing leaves the machine.

Every send is accepted and, when a report URL is configured, a "Delivered" report follows a
moment later in Mitto's JSON shape, so the whole flow (send, report, status) can be watched.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

import httpx

from application.ports import OutboundSms, SmsReceipt

log = logging.getLogger("blossom.sms.simulator")


class SimulatorSmsGateway:
    def __init__(
        self,
        report_url: str | None,
        *,
        delay_seconds: float = 2.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._report_url = report_url
        self._delay = delay_seconds
        self._owns_client = client is None
        self._http = client or httpx.AsyncClient(timeout=5.0)
        self._sent: dict[str, SmsReceipt] = {}
        # The loop keeps only weak references to tasks: hold them until they finish.
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, sms: OutboundSms) -> SmsReceipt:
        receipt = SmsReceipt("sim-" + uuid.uuid4().hex)
        self._sent[sms.reference] = receipt
        # Development only, so the text is worth seeing; the number is still left out.
        log.info(
            "simulated sms",
            extra={
                "reference": sms.reference,
                "provider_id": receipt.provider_id,
                "characters": len(sms.text),
                "text": sms.text,
            },
        )
        if self._report_url:
            task = asyncio.create_task(self._report_later(self._report_url, sms, receipt))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return receipt

    async def lookup(self, reference: str) -> SmsReceipt | None:
        return self._sent.get(reference)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_client:
            await self._http.aclose()

    async def _report_later(self, url: str, sms: OutboundSms, receipt: SmsReceipt) -> None:
        await asyncio.sleep(self._delay)
        report = {
            "msgid": receipt.provider_id,
            "reference": sms.reference,
            "status": "Delivered",
            "timestamp": datetime.now(UTC).isoformat(),
        }
        try:
            response = await self._http.post(url, json=report)
        except Exception as exc:  # a report is best effort: it must never break a send
            log.warning(
                "simulated report not delivered",
                extra={"reference": sms.reference, "error_type": type(exc).__name__},
            )
            return
        if response.is_error:
            log.warning(
                "simulated report refused",
                extra={"reference": sms.reference, "status": response.status_code},
            )
