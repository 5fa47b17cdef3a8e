"""Gateway unit tests against fake engines (real uvicorn servers on free 127.0.0.1 ports).

Ejection and re-admission tests are in ``test_gateway_ejection.py``.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from test_gateway_helpers import ManualClock, closed_port, start_gateway, two_engine_stack

from autellix.gateway.parsing import GatewayError, identify, prompt_tokens, validate_call

pytestmark = pytest.mark.timeout(60)

LONG = "word " * 2200  # 11000 chars: about 2750 tokens at 4 chars/token (> 2048)


stack = pytest.fixture(two_engine_stack)
shared_stack = pytest.fixture(two_engine_stack, scope="module", name="shared_stack")


def chat(client, content="hi", headers=None, **kw):
    body = {"model": "tiny", "messages": [{"role": "user", "content": content}], **kw}
    return client.post("/v1/chat/completions", json=body, headers=headers or {})


def engine_of(resp) -> str:
    return resp.headers["x-autellix-engine"]


# ---- pure parsing ---------------------------------------------------------------------
def test_identity_header_then_session_then_one_call():
    h = {"x-autellix-program": "p1", "x-autellix-thread": "t1"}
    assert identify(h, {"session_id": "s"}, "c1") == identify(h, {}, "c1")
    i = identify(h, {}, "c1")
    assert (i.program_id, i.thread_id, i.one_call) == ("p1", "t1", False)
    i = identify({}, {"session_id": "s9"}, "c1")
    assert (i.program_id, i.thread_id, i.one_call) == ("s9", "c1", False)
    i = identify({}, {}, "c1")
    assert i.one_call and i.program_id == "call-c1" and i.thread_id == "c1"
    for bad in ({"x-autellix-program": " "}, {"x-autellix-program": "x" * 300}):
        with pytest.raises(GatewayError):
            identify(bad, {}, "c")
    with pytest.raises(GatewayError):
        identify({}, {"session_id": 5}, "c")


def test_prompt_token_estimates():
    chat_body = {"messages": [{"role": "user", "content": "a" * 40},
                              {"role": "user", "content": [{"type": "text", "text": "b" * 8}]}]}
    assert prompt_tokens("chat", chat_body) == 12
    assert prompt_tokens("completions", {"prompt": "x" * 9}) == 3
    assert prompt_tokens("completions", {"prompt": [1, 2, 3, 4, 5]}) == 5
    assert prompt_tokens("completions", {"prompt": [[1, 2], [1, 2, 3]]}) == 3
    validate_call("completions", {"model": "m", "prompt": [[1, 2], [3]]})


# ---- forwarding ---------------------------------------------------------------------
def test_forwards_vllm_xargs_and_keeps_user_fields(stack):
    gw, engines, client = stack
    for e in engines:
        e.token_delay = 0.01
    h = {"X-Autellix-Program": "prog-a", "X-Autellix-Thread": "th-1", "X-Request-Id": "rid-1"}
    r = chat(client, headers=h, max_tokens=5, vllm_xargs={"mine": 7}, temperature=0.5)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == " tok" * 5
    sent = [b for e in engines for b in e.bodies]
    assert len(sent) == 1
    xa = sent[0]["vllm_xargs"]
    assert xa["mine"] == 7 and xa["program_id"] == "prog-a" and xa["thread_id"] == "th-1"
    assert xa["program_service"] == 0.0 and sent[0]["temperature"] == 0.5
    hdrs = [h for e in engines for h in e.headers][0]
    assert hdrs.get("x-request-id") == "rid-1" and "x-autellix-program" not in hdrs
    # the second call of the program carries the service the first one attained
    r = chat(client, headers=h, max_tokens=5)
    sent = [b for e in engines for b in e.bodies]
    assert sent[-1]["vllm_xargs"]["program_service"] >= 0.04
    info = client.get("/v1/programs/prog-a").json()
    assert info["calls"] == 2 and info["service"] >= 0.08


def test_session_id_and_one_call_programs(stack):
    gw, engines, client = stack
    r = client.post("/v1/completions", json={"model": "tiny", "prompt": "hello",
                                             "session_id": "sess-1", "max_tokens": 2})
    assert r.status_code == 200 and r.headers["x-autellix-program"] == "sess-1"
    assert client.get("/v1/programs/sess-1").json()["calls"] == 1
    r = client.post("/v1/completions", json={"model": "tiny", "prompt": "x", "max_tokens": 1})
    pid = r.headers["x-autellix-program"]
    assert pid.startswith("call-")
    assert client.get(f"/v1/programs/{pid}").status_code == 404  # ended with its call
    sent = [b for e in engines for b in e.bodies]
    assert sent[-1]["vllm_xargs"]["thread_id"] == r.headers["x-autellix-call"]


def test_streaming_passthrough(stack):
    gw, engines, client = stack
    body = {"model": "tiny", "prompt": "hi", "max_tokens": 3, "stream": True,
            "stream_options": {"include_usage": True}}
    with client.stream("POST", "/v1/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln.startswith("data: ")]
    assert lines[-1] == "data: [DONE]" and len(lines) == 5
    m = client.get("/metrics").text
    assert 'autellix_gateway_calls_total{endpoint="completions",status="ok"} 1.0' in m


# ---- balancing ----------------------------------------------------------------------
def test_long_prompts_stick_short_prompts_spread(stack):
    _, engines, _ = stack
    # its own gateway: calls are held at the engines for as long as a busy machine
    # needs to start the next ones, longer than the stack's 1 s read timeout
    gw = start_gateway([e.url for e in engines], read_timeout=120.0, clock=ManualClock())
    try:
        _stick_and_spread(gw, engines)
    finally:
        gw.stop()


def _stick_and_spread(gw, engines) -> None:
    results: list[tuple[str, str]] = []

    def call(pid, content):
        with httpx.Client(base_url=gw.url, timeout=30) as c:
            r = chat(c, content, headers={"X-Autellix-Program": pid}, max_tokens=2)
            assert r.status_code == 200
            results.append((pid, engine_of(r)))

    def in_flight_together(calls):
        """Start the calls one by one, each only once the previous one is held at an
        engine, so the balancer sees every earlier call's load; then release them."""
        for e in engines:
            e.held = True
        threads = []
        for k, (pid, content) in enumerate(calls, 1):
            threads.append(threading.Thread(target=call, args=(pid, content)))
            threads[-1].start()
            assert engines[0].wait_for(lambda k=k: sum(e.running for e in engines) == k,
                                      timeout=30)
        for e in engines:
            e.held = False
        for t in threads:
            t.join()

    in_flight_together([(f"short-{i}", "hi") for i in range(8)])
    assert sorted(sum(1 for _, e in results if e == x.url) for x in engines) == [4, 4]  # spread
    results.clear()
    in_flight_together([("long-a", LONG), ("long-b", LONG)])  # pinned to the least used
    for _ in range(2):
        in_flight_together([("long-b", LONG), ("long-a", LONG)])  # then they stay put
    by_prog = {p: {e for q, e in results if q == p} for p in ("long-a", "long-b")}
    assert all(len(s) == 1 for s in by_prog.values()), by_prog  # long: sticky
    assert by_prog["long-a"] != by_prog["long-b"]


# ---- failures -----------------------------------------------------------------------
def test_dead_engine_is_skipped_and_no_engine_gives_503(stack):
    gw, engines, client = stack
    engines[0].stop()
    for _ in range(3):
        r = chat(client, max_tokens=2)
        assert r.status_code == 200 and engine_of(r) == engines[1].url
    engines[1].stop()
    r = chat(client, max_tokens=2)  # the last admitted engine is not ejected by calls ...
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "no_engine_available"
    # ... but its failing /health probe ejects it
    assert engines[0].wait_for(lambda: client.get("/health").status_code == 503)
    assert client.get("/v1/models").status_code == 503


def test_engine_crash_mid_stream_ends_stream_with_error(stack):
    gw, engines, client = stack
    for e in engines:
        e.mode = "crash"
    body = {"model": "tiny", "prompt": "hi", "max_tokens": 6, "stream": True}
    with client.stream("POST", "/v1/completions", json=body) as r:
        lines = [ln for ln in r.iter_lines() if ln.startswith("data: ")]
    assert len(lines) == 3 and '"error"' in lines[-1] and "engine_failed" in lines[-1]
    m = client.get("/metrics").text
    assert 'autellix_gateway_calls_total{endpoint="completions",status="failed"} 1.0' in m


# ---- malformed requests ---------------------------------------------------------------
@pytest.mark.parametrize("path,body", [
    ("/v1/chat/completions", b"{not json"),
    ("/v1/chat/completions", b"[1, 2]"),
    ("/v1/chat/completions", b""),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}),
    ("/v1/chat/completions", {"model": 3, "messages": [{"role": "user", "content": "x"}]}),
    ("/v1/chat/completions", {"model": "tiny"}),
    ("/v1/chat/completions", {"model": "tiny", "messages": []}),
    ("/v1/chat/completions", {"model": "tiny", "messages": ["hi"]}),
    ("/v1/chat/completions", {"model": "tiny", "messages": [{"content": "x"}]}),
    ("/v1/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": "x"}],
                              "stream": "yes"}),
    ("/v1/completions", {"model": "tiny"}),
    ("/v1/completions", {"model": "tiny", "prompt": 5}),
    ("/v1/completions", {"model": "tiny", "prompt": [1, "a"]}),
    ("/v1/completions", {"model": "tiny", "prompt": "x", "max_tokens": "5"}),
    ("/v1/completions", {"model": "tiny", "prompt": "x", "max_tokens": 0}),
    ("/v1/completions", {"model": "tiny", "prompt": "x", "temperature": "hot"}),
    ("/v1/completions", {"model": "tiny", "prompt": "x", "vllm_xargs": [1]}),
    ("/v1/completions", {"model": "tiny", "prompt": "x", "session_id": 12}),
])
def test_malformed_requests_get_openai_400(shared_stack, path, body):
    gw, engines, client = shared_stack
    if isinstance(body, bytes):
        r = client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        r = client.post(path, json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["message"] and err["code"]
    assert not any(e.bodies for e in engines)


def test_unknown_route_and_method_are_openai_errors(stack):
    gw, engines, client = stack
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = client.get("/v1/completions")
    assert r.status_code == 405 and "error" in r.json()


# ---- client disconnect ------------------------------------------------------------------
def test_disconnect_aborts_non_streaming_upstream(stack):
    gw, engines, client = stack
    for e in engines:
        e.token_delay = 0.5
    with pytest.raises(httpx.ReadTimeout):
        with httpx.Client(base_url=gw.url, timeout=httpx.Timeout(10, read=0.3)) as c:
            chat(c, max_tokens=20)
    assert engines[0].wait_for(lambda: sum(e.aborted for e in engines) == 1)
    assert sum(e.running for e in engines) == 0
    m = client.get("/metrics").text
    assert "autellix_gateway_aborts_total 1.0" in m
    assert f'autellix_gateway_inflight{{engine="{engines[0].url}"}} 0.0' in m


def test_disconnect_aborts_streaming_upstream(stack):
    gw, engines, client = stack
    for e in engines:
        e.token_delay = 0.05
    body = {"model": "tiny", "prompt": "hi", "max_tokens": 200, "stream": True}
    with httpx.Client(base_url=gw.url, timeout=10) as c:
        with c.stream("POST", "/v1/completions", json=body) as r:
            next(r.iter_lines())
    assert engines[0].wait_for(lambda: sum(e.aborted for e in engines) == 1)
    assert engines[0].wait_for(lambda: "autellix_gateway_aborts_total 1.0"
                               in client.get("/metrics").text)


# ---- sessions, metrics, memory ------------------------------------------------------------
def test_programs_api(stack):
    gw, engines, client = stack
    r = client.post("/v1/programs")
    assert r.status_code == 200 and r.json()["id"].startswith("prog-")
    assert client.post("/v1/programs", json={"id": "mine"}).json()["id"] == "mine"
    assert client.post("/v1/programs", json={"id": 5}).status_code == 400
    assert chat(client, headers={"X-Autellix-Program": "mine"}).status_code == 200
    assert 'autellix_gateway_programs_active 2.0' in client.get("/metrics").text
    r = client.delete("/v1/programs/mine")
    assert r.status_code == 200 and r.json()["calls"] == 1 and r.json()["deleted"]
    r = client.delete("/v1/programs/mine")
    assert r.status_code == 404 and r.json()["error"]["code"] == "program_not_found"


def test_metrics_exposition(stack):
    gw, engines, client = stack
    chat(client)
    chat(client, stream="yes")
    m = client.get("/metrics")
    assert m.headers["content-type"].startswith("text/plain")
    for name in ("autellix_gateway_calls_total", "autellix_gateway_programs_active",
                 "autellix_gateway_inflight", "autellix_gateway_call_latency_seconds_bucket",
                 "autellix_gateway_engine_healthy"):
        assert name in m.text
    assert 'status="rejected"} 1.0' in m.text and 'status="ok"} 1.0' in m.text


def test_table_is_bounded_and_expires():
    from autellix.gateway import create_app
    app = create_app([f"http://127.0.0.1:{closed_port()}"], max_entries=3, ttl=10)
    st = app.state.gateway
    for i in range(10):
        st.start_program(f"p{i}")
    assert len(st.table) == 3
    assert sorted(st.expire(now=time.monotonic() + 11)) == ["p7", "p8", "p9"]
    assert len(st.table) == 0
