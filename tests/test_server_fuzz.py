"""Hypothesis fuzz of every JSON endpoint of the app (each POST/PUT/PATCH operation of its OpenAPI schema that
takes JSON, MLflow's included), in-process: whatever JSON arrives, the answer is never a 5xx."""

from __future__ import annotations

import asyncio
import re
import string
import warnings
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lakeml
from lakeml.server.app import create_app
from lakeml.server.settings import ServerSettings

JSON_LEAF = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30)
JSON = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
SEGMENT = st.text(alphabet=string.ascii_letters + string.digits + "-_.~%@ é", min_size=1, max_size=40)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    lake = lakeml.connect(warehouse=tmp_path_factory.mktemp("fuzz") / "wh", commit_interval=0.2)
    run = lake.create_run("fuzz", run_name="seed")
    lake.log_metric(run.run_id, "m", 1.0)
    lake.create_model("fuzz-model")
    lake.flush()
    app = create_app(lake, ServerSettings(sql_time_limit=2.0, max_body_bytes=256 * 1024))
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                               base_url="http://t", timeout=60)

    def request(method: str, url: str, **kw) -> httpx.Response:
        return loop.run_until_complete(client.request(method, url, **kw))

    known = {"run_id": run.run_id, "name": "fuzz-model", "model_name": "fuzz-model", "version": "1"}
    yield request, json_operations(app), known
    loop.run_until_complete(client.aclose())
    loop.close()
    lake.close()


def json_operations(app) -> list[tuple[str, str, list[str]]]:
    """``(method, path template, body field names)`` of every POST/PUT/PATCH operation in the OpenAPI
    schema that takes JSON: those declaring a JSON body, and MLflow's (which parse the body themselves)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate operation ids of aliased MLflow paths
        schema = app.openapi()
    comps = schema.get("components", {}).get("schemas", {})
    out = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            if method not in ("post", "put", "patch") or "artifacts" in path:
                continue
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" not in content and not path.startswith("/api/2.0/mlflow/"):
                continue
            body = content.get("application/json", {}).get("schema", {})
            ref = body.get("$ref", "").rsplit("/", 1)[-1]
            fields = list((comps.get(ref, body).get("properties") or {}))
            out.append((method.upper(), path, fields))
    return sorted(out)


def test_there_are_json_routes_to_fuzz(fuzzed):
    request, ops, _ = fuzzed
    paths = {p for _, p, _ in ops}
    assert {"/api/v1/sql", "/api/v1/server/tokens"} <= paths
    assert len(ops) >= 5


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_no_json_body_yields_a_5xx(fuzzed, data):
    request, ops, known = fuzzed
    method, path, fields = data.draw(st.sampled_from(ops), label="operation")
    url = path
    for name in re.findall(r"{(\w+)(?::path)?}", path):
        value = data.draw(st.one_of(st.just(known.get(name, "x")), SEGMENT), label=name)
        url = re.sub(r"{" + name + r"(?::path)?}", quote(value, safe=""), url)
    shaped = st.fixed_dictionaries({}, optional={f: JSON for f in fields}) if fields else JSON
    body = data.draw(st.one_of(JSON, shaped), label="body")
    r = request(method, url, json=body)
    assert r.status_code < 500, f"{method} {url} {body!r} -> {r.status_code} {r.text[:500]}"
    if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
        payload = r.json()
        assert "error" in payload or "error_code" in payload, payload


@settings(max_examples=30, deadline=None)
@given(raw=st.binary(max_size=200))
def test_bytes_that_are_not_json_get_a_4xx(fuzzed, raw):
    request, ops, _ = fuzzed
    for method, path, _ in ops[:: max(1, len(ops) // 8)]:
        if "{" in path:
            continue
        r = request(method, path, content=raw, headers={"content-type": "application/json"})
        assert r.status_code < 500, f"{method} {path} {raw!r} -> {r.status_code} {r.text[:300]}"
