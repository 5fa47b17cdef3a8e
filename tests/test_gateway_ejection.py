"""Outlier ejection through HTTP: hung, dead and sick engines, trials, retries, limits.

The stack's gateway ejects an engine on its first failure (``eject_after=1``) and
reads ejection times off a :class:`ManualClock`, so whether an engine is ejected,
on probation or admitted never depends on how fast the machine runs.
"""

from __future__ import annotations

import threading

import httpx
import pytest
from test_gateway_helpers import ManualClock, closed_port, start_gateway, two_engine_stack

pytestmark = pytest.mark.timeout(60)
stack = pytest.fixture(two_engine_stack)


def chat(client, content="hi", headers=None, **kw):
    body = {"model": "tiny", "messages": [{"role": "user", "content": content}], **kw}
    return client.post("/v1/chat/completions", json=body, headers=headers or {})


def engine_of(resp) -> str:
    return resp.headers["x-autellix-engine"]


def test_hanging_engine_times_out_with_502_and_is_avoided(stack):
    gw, engines, client = stack
    engines[0].mode = "hang"  # completions hang; /health still answers 200
    r = chat(client, max_tokens=2)  # least-used with equal loads: engine 0
    assert r.status_code == 502
    err = r.json()["error"]
    assert err["code"] == "engine_timeout" and err["type"] == "server_error" and err["message"]
    # the health loop (every 0.2 s) sees 200 from engine 0 but cannot re-admit it
    probes = gw.state.probes
    assert engines[0].wait_for(lambda: gw.state.probes >= probes + 6)
    for _ in range(3):
        r = chat(client, max_tokens=2)
        assert r.status_code == 200 and engine_of(r) == engines[1].url
    m = client.get("/metrics").text
    assert f'autellix_gateway_engine_ejections_total{{engine="{engines[0].url}"}} 1.0' in m
    assert f'autellix_gateway_engine_healthy{{engine="{engines[0].url}"}} 0.0' in m
    assert client.get("/health").json()["engines"][engines[0].url] == "ejected"


def test_half_open_trial_call_readmits_or_doubles_the_ejection(stack):
    gw, engines, client = stack
    clock, e0 = gw.state.clock, engines[0].url
    engines[0].mode = "hang"
    assert chat(client, max_tokens=2).status_code == 502       # ejected for 1 s
    clock.advance(1.0)                                          # ejection over: probation
    assert client.get("/health").json()["engines"][e0] == "probing"
    r = chat(client, max_tokens=2)                              # the trial: hangs again
    assert r.status_code == 502 and engine_of(r) == e0
    clock.advance(1.5)                                          # second ejection is 2 s
    assert engine_of(chat(client, max_tokens=2)) == engines[1].url
    engines[0].mode = "ok"
    clock.advance(0.5)
    r = chat(client, max_tokens=2)                              # trial succeeds
    assert r.status_code == 200 and engine_of(r) == e0
    assert client.get("/health").json()["unhealthy"] == []
    assert gw.state.engines[0].outlier.ejections == 2


def test_only_a_call_that_never_reached_the_engine_is_retried(stack):
    gw, engines, client = stack
    engines[0].mode = "crash"  # accepts the call, then drops the connection
    body = {"model": "tiny", "prompt": "hi", "max_tokens": 6}
    r = client.post("/v1/completions", json={**body, "stream": True})
    assert '"error"' in r.text and len(engines[0].bodies) == 1 and not engines[1].bodies
    dead = start_gateway([f"http://127.0.0.1:{closed_port()}", engines[1].url],
                         clock=ManualClock())
    try:
        r = httpx.post(f"{dead.url}/v1/completions", json=body, timeout=10)
        assert r.status_code == 200 and engine_of(r) == engines[1].url  # connect refused: moved
        assert len(engines[1].bodies) == 1
    finally:
        dead.stop()


def test_full_engines_answer_503_engines_busy(stack):
    gw, engines, client = stack
    limited = start_gateway([engines[0].url], max_inflight_per_engine=1, clock=ManualClock())
    engines[0].token_delay = 0.05
    try:
        with httpx.Client(base_url=limited.url, timeout=10) as c:
            t = threading.Thread(target=chat, args=(c,), kwargs={"max_tokens": 20})
            t.start()
            assert engines[0].wait_for(lambda: engines[0].running == 1)
            r = chat(c, max_tokens=1)
            t.join()
        assert r.status_code == 503 and r.json()["error"]["code"] == "engines_busy"
        assert "max_inflight_per_engine" in r.json()["error"]["message"]
    finally:
        limited.stop()


def test_sick_engine_is_ejected_then_readmitted_by_a_trial_call(stack):
    gw, engines, client = stack
    engines[0].mode = "sick"
    assert engines[0].wait_for(
        lambda: client.get("/health").json()["unhealthy"] == [engines[0].url])
    assert all(engine_of(chat(client, max_tokens=1)) == engines[1].url for _ in range(3))
    engines[0].mode = "ok"
    probes = gw.state.probes
    assert engines[0].wait_for(lambda: gw.state.probes >= probes + 6)  # passing probes ran
    assert client.get("/health").json()["unhealthy"] == [engines[0].url]  # /health alone: no
    gw.state.clock.advance(1.0)
    assert engine_of(chat(client, max_tokens=1)) == engines[0].url  # the trial
    assert client.get("/health").json()["unhealthy"] == []
    assert client.get("/v1/models").json()["data"][0]["id"] == "tiny"


def test_calls_never_eject_the_last_admitted_engine(stack):
    gw, engines, client = stack
    for e in engines:
        e.mode = "hang"  # an overload looks like this too: every engine times out
    assert chat(client, max_tokens=2).status_code == 502  # engine 0: ejected
    r = chat(client, max_tokens=2)
    assert r.status_code == 502 and engine_of(r) == engines[1].url  # engine 1: kept
    assert gw.state.engines[1].healthy and gw.state.engines[1].outlier.ejections == 0
    engines[1].mode = "ok"
    assert engine_of(chat(client, max_tokens=2)) == engines[1].url


def test_when_probes_eject_every_engine_calls_are_still_routed_in_panic(stack):
    gw, engines, client = stack
    for e in engines:
        e.mode = "sick"  # /health fails, as it does when a burst delays every probe
    assert engines[0].wait_for(lambda: len(client.get("/health").json()["unhealthy"]) == 2)
    r = chat(client, max_tokens=1)
    assert r.status_code == 200  # not 503: ejecting every engine would be an outage
    assert "autellix_gateway_panic_routed_total 1.0" in client.get("/metrics").text
    assert len(client.get("/health").json()["unhealthy"]) == 2  # panic re-admits nobody
