"""Ops surface: health, readiness, metrics, OpenAPI, problem+json errors, request ids."""

from __future__ import annotations

from litestar import post
from litestar.params import JSONBody
from prometheus_client import REGISTRY

from infrastructure.db.engine import create_app_engine
from interfaces.bootstrap import Container
from interfaces.http.app import create_app
from tests.support.http import client as http_client


async def test_healthz_and_readyz_answer_ok_on_a_migrated_database(container):
    async with http_client(create_app(container)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


async def test_readyz_is_503_with_a_reason_when_the_database_is_unreachable(container):
    unreachable = Container(
        settings=container.settings,
        database_url="postgresql://nobody@127.0.0.1:1/none",
        engine=create_app_engine("postgresql://nobody@127.0.0.1:1/none"),
        sessions=container.sessions,
        uow=container.uow,
        cipher=container.cipher,
        blind_index=container.blind_index,
        http=container.http,
    )
    async with http_client(create_app(unreachable)) as client:
        ready = await client.get("/readyz")
    await unreachable.engine.dispose()
    assert ready.status_code == 503
    assert ready.headers["content-type"].startswith("application/problem+json")
    assert "database unreachable" in ready.json()["detail"]


async def test_metrics_expose_http_request_counts(container):
    async with http_client(create_app(container)) as client:
        await client.get("/healthz")
        metrics = (await client.get("/metrics")).text
    assert "blossom_requests_total{" in metrics
    assert 'path="/healthz"' in metrics


def _unmatched_count(method: str, status: int) -> float:
    labels = {
        "method": method,
        "path": "<unmatched>",
        "status_code": str(status),
        "app_name": "sms_blossom",
    }
    return REGISTRY.get_sample_value("blossom_requests_total", labels) or 0.0


async def test_requests_matching_no_route_are_counted_under_one_path_label(container):
    before = _unmatched_count("GET", 404), _unmatched_count("DELETE", 405)
    async with http_client(create_app(container)) as client:
        await client.get("/webhooks/mitto/dlr-typo")  # a mistyped callback URL
        await client.delete("/healthz")
        metrics = (await client.get("/metrics")).text
    after = _unmatched_count("GET", 404), _unmatched_count("DELETE", 405)
    assert after == (before[0] + 1, before[1] + 1)
    assert "dlr-typo" not in metrics, "a raw path would be a new series per probe"


async def test_openapi_document_is_served(container):
    async with http_client(create_app(container)) as client:
        doc = (await client.get("/schema/openapi.json")).json()
        ui = await client.get("/schema/swagger")
    assert doc["openapi"].startswith("3.1")
    assert {"/healthz", "/readyz"} <= set(doc["paths"])
    assert ui.status_code == 200


async def test_unknown_route_or_method_is_problem_json_with_a_stable_type(container):
    async with http_client(create_app(container)) as client:
        response = await client.get("/no/such/thing")
        wrong_method = await client.delete("/healthz")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "https://sms-blossom.app/problems/not-found"
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["allow"]
    assert wrong_method.json()["type"] == "https://sms-blossom.app/problems/method-not-allowed"


@post("/boom", include_in_schema=False)
async def boom() -> None:
    raise RuntimeError("secret internals at /srv/app.py line 42")


@post("/echo", include_in_schema=False)
async def echo(data: JSONBody[dict[str, str]]) -> dict[str, str]:
    return data


def _route_sample(name: str, path: str, status: int) -> float:
    labels = {"method": "POST", "path": path, "status_code": str(status), "app_name": "sms_blossom"}
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_route_requests_are_counted_timed_and_failures_counted_as_errors(container):
    series = [
        ("blossom_requests_total", "/echo", 201),
        ("blossom_request_duration_seconds_count", "/echo", 201),
        ("blossom_requests_error_total", "/echo", 201),
        ("blossom_requests_total", "/boom", 500),
        ("blossom_request_duration_seconds_count", "/boom", 500),
        ("blossom_requests_error_total", "/boom", 500),
    ]
    before = [_route_sample(*s) for s in series]
    app = create_app(container)
    app.register(boom)
    app.register(echo)
    async with http_client(app) as client:
        for _ in range(2):
            await client.post("/echo", json={"a": "b"})
        await client.post("/boom")
    added = [_route_sample(*s) - b for s, b in zip(series, before, strict=True)]
    assert added == [2, 2, 0, 1, 1, 1]
    in_progress = _route_sample("blossom_requests_in_progress", "/echo", 200)
    assert in_progress == 0, "every request that began has ended"


async def test_unexpected_error_is_a_500_problem_without_internals(container):
    app = create_app(container)
    app.register(boom)
    async with http_client(app) as client:
        response = await client.post("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["type"] == "https://sms-blossom.app/problems/server-error"
    assert "secret internals" not in response.text and "Traceback" not in response.text


async def test_oversized_and_malformed_bodies_are_rejected_as_problems(container):
    app = create_app(container)
    app.register(echo)
    limit = container.settings.max_request_body_bytes
    async with http_client(app) as client:
        too_big = await client.post(
            "/echo",
            content=b"{" + b" " * limit + b"}",
            headers={"content-type": "application/json"},
        )
        malformed = await client.post(
            "/echo", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert too_big.status_code == 413
    assert too_big.json()["type"] == "https://sms-blossom.app/problems/payload-too-large"
    assert malformed.status_code == 400
    assert malformed.headers["content-type"].startswith("application/problem+json")


async def test_request_id_is_echoed_when_well_formed_and_replaced_when_not(container):
    async with http_client(create_app(container)) as client:
        kept = await client.get("/healthz", headers={"X-Request-ID": "abc-12345678"})
        replaced = await client.get("/healthz", headers={"X-Request-ID": "bad id\n<script>"})
        generated = await client.get("/healthz")
    assert kept.headers["x-request-id"] == "abc-12345678"
    assert replaced.headers["x-request-id"] not in ("", "bad id\n<script>")
    assert len(generated.headers["x-request-id"]) == 32
