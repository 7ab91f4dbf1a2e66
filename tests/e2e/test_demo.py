"""`blossom demo`: the app against the fake Shopify, ready to click through."""

from __future__ import annotations

import asyncio

import httpx

from tests.support.processes import blossom, child_env, eventually, free_port


async def test_demo_installs_a_shop_whose_sample_contacts_the_printed_token_can_read(tmp_path):
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *blossom("demo"),
        env=child_env(BLOSSOM_DATA_DIR=str(tmp_path / "data"), PORT=str(port)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        token = await asyncio.wait_for(_printed_token(process), timeout=120)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            shop = (await http.get("/api/v1/shop", headers=headers)).json()

            async def both_contacts() -> list | None:
                listed = (await http.get("/api/v1/contacts", headers=headers)).json()["items"]
                return listed if len(listed) == 2 else None

            contacts = await eventually(both_contacts, timeout=60)
    finally:
        process.terminate()
        await process.wait()
    assert shop["domain"] == "blossom-demo.myshopify.com"
    assert {c["consent_state"] for c in contacts} == {"subscribed"}


async def _printed_token(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    expect_token = False
    while line := (await process.stdout.readline()).decode():
        if expect_token:
            return line.strip()
        expect_token = line.strip().startswith("Session token")
    raise AssertionError("blossom demo exited without printing a session token")
