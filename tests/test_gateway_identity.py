"""Program identity from the ecosystem's conventions, and their precedence."""

from __future__ import annotations

import httpx
import pytest
from test_gateway_helpers import FakeEngine, ManualClock, start_gateway

from autellix.gateway.parsing import IDENTITY_PRECEDENCE, GatewayError, identify

pytestmark = pytest.mark.timeout(60)

# every source at once, in precedence order: (headers, body) adding that source
SOURCES = [
    ("header:x-autellix-program", {"x-autellix-program": "p-autellix"}, {}),
    ("vllm_xargs.agentic_context", {},
     {"vllm_xargs": {"agentic_context": {"program_id": "p-ctx"}}}),
    ("body:session_id", {}, {"session_id": "p-session-body"}),
    ("header:x-session-id", {"x-session-id": "p-session-header"}, {}),
    ("header:x-gateway-inference-fairness-id",
     {"x-gateway-inference-fairness-id": "p-fairness"}, {}),
    ("body:user", {}, {"user": "p-user"}),
]
EXPECTED = ["p-autellix", "p-ctx", "p-session-body", "p-session-header", "p-fairness", "p-user"]


def test_the_documented_precedence_is_the_one_applied():
    assert [s for s, _, _ in SOURCES] == list(IDENTITY_PRECEDENCE)


@pytest.mark.parametrize("k", range(len(SOURCES)))
def test_each_source_names_the_program_and_beats_every_later_one(k):
    headers, body = {}, {}
    for _, h, b in SOURCES[k:]:  # this source and all below it
        headers.update(h)
        body.update(b)
    ident = identify(headers, body, "c1")
    assert (ident.program_id, ident.source, ident.one_call) == (EXPECTED[k], SOURCES[k][0], False)
    alone = identify(SOURCES[k][1], SOURCES[k][2], "c1")  # and it works on its own
    assert alone.program_id == EXPECTED[k] and alone.thread_id == "c1"


def test_agentic_context_forms_and_its_thread():
    ctx = lambda c: {"vllm_xargs": {"agentic_context": c}}  # noqa: E731
    assert identify({}, ctx("plain-id"), "c").program_id == "plain-id"
    i = identify({}, ctx({"session_id": "s", "thread_id": "t7"}), "c")
    assert (i.program_id, i.thread_id) == ("s", "t7")
    assert identify({}, ctx({"task_id": 42}), "c").program_id == "42"
    i = identify({"x-autellix-thread": "th"}, ctx({"program_id": "p", "thread_id": "t"}), "c")
    assert i.thread_id == "th"  # the thread header wins over the context's thread
    i = identify({}, ctx({"kind": "react"}), "c")  # a context that names no program
    assert i.one_call and i.source == "none"


@pytest.mark.parametrize("headers,body", [
    ({}, {"user": 7}),
    ({}, {"session_id": ["s"]}),
    ({"x-autellix-program": "p"}, {"user": 7}),  # typed even when a higher source wins
    ({}, {"vllm_xargs": {"agentic_context": [1]}}),
    ({}, {"vllm_xargs": {"agentic_context": {"program_id": {"x": 1}}}}),
    ({}, {"vllm_xargs": {"agentic_context": {"program_id": "p", "thread_id": True}}}),
    ({"x-session-id": " "}, {}),
    ({"x-gateway-inference-fairness-id": "f" * 300}, {}),
])
def test_malformed_identities_are_400(headers, body):
    with pytest.raises(GatewayError) as e:
        identify(headers, body, "c")
    assert e.value.status == 400 and e.value.param


def test_identity_headers_reach_the_table_through_http():
    engine = FakeEngine("e0").start()
    gw = start_gateway([engine.url], clock=ManualClock())
    try:
        with httpx.Client(base_url=gw.url, timeout=10) as c:
            body = {"model": "tiny", "prompt": "hi", "max_tokens": 1}
            for h, b, want in ((SOURCES[3][1], {}, "p-session-header"),
                               (SOURCES[4][1], {}, "p-fairness"),
                               ({}, SOURCES[1][2], "p-ctx"),
                               ({}, {"user": "alice"}, "alice")):
                r = c.post("/v1/completions", json={**body, **b}, headers=h)
                assert r.status_code == 200 and r.headers["x-autellix-program"] == want
                assert c.get(f"/v1/programs/{want}").json()["calls"] == 1
        xa = engine.bodies[2]["vllm_xargs"]
        assert xa["program_id"] == "p-ctx" and xa["agentic_context"] == {"program_id": "p-ctx"}
        assert engine.headers[0].get("x-session-id") == "p-session-header"  # still forwarded
    finally:
        gw.stop()
        engine.stop()
