"""Replay tests: prompt construction, arrivals, and runs against fake engines (with and
without the gateway)."""

from __future__ import annotations

from itertools import pairwise

import pytest
from test_gateway_helpers import FakeEngine, start_gateway

from autellix.metrics import CallRecord, ProgramRecord
from autellix.program import Call, Program
from autellix.replay import WORDS, ProgramText, PromptShaping, poisson_arrivals, replay

pytestmark = pytest.mark.timeout(60)


def chain(pid: str, n: int = 3, delay: float = 0.05) -> Program:
    calls = [Call("c0", (), 0, 20, 3)]
    for i in range(1, n):
        calls.append(Call(f"c{i}", (f"c{i-1}",), 30 + 10 * i, 5, 4, delay))
    return Program(pid, tuple(calls), workload="test")


def fanout(pid: str) -> Program:
    calls = (Call("root", (), 0, 10, 2), Call("a", ("root",), 12, 3, 2, 0.05),
             Call("b", ("root",), 12, 3, 5, 0.0), Call("join", ("a", "b"), 20, 2, 1))
    return Program(pid, calls, workload="test")


def test_prompts_share_context_and_are_deterministic():
    p = chain("p", 3)
    t = ProgramText(p, PromptShaping())
    w0, w1, w2 = (t.prompt(c) for c in p.calls)
    assert (len(w0), len(w1), len(w2)) == (20, 45, 55)
    assert w1[:20] == w0 and w2[:45] == w1  # child = parent's prompt + stand-in output + new
    t2 = ProgramText(p, PromptShaping())
    assert t2.prompt(p.calls[2]) == w2  # same words whatever the order calls are built in
    assert all(w in WORDS for w in t.text(p.calls[1]).split())
    clipped = ProgramText(p, PromptShaping(scale=0.5, max_prompt_tokens=20))
    assert len(clipped.prompt(p.calls[0])) == 10 and len(clipped.prompt(p.calls[2])) == 20
    assert PromptShaping(max_output_tokens=2).output(p.calls[1]) == 2
    fit = PromptShaping(max_model_len=60)  # 60 - 16 slack - 4 output = 40 words at most
    ft = ProgramText(p, fit)
    # c1 (45 words) keeps its 20-word prefix and drops to half the free window (10 more);
    # c2 inherits that cut and extends c1, so the prefix cache still hits
    assert [len(ft.prompt(c)) for c in p.calls] == [20, 30, 40]
    assert ft.prompt(p.calls[2])[:30] == ft.prompt(p.calls[1]) and ft.clipped(p.calls[2]) == 15
    assert PromptShaping(max_model_len=20).output(Call("x", output_tokens=500)) == 3
    with pytest.raises(ValueError):
        PromptShaping(scale=0)


def test_poisson_arrivals():
    a = poisson_arrivals(2000, 4.0, seed=1)
    assert a == poisson_arrivals(2000, 4.0, seed=1) and a[0] == 0.0
    assert all(x <= y for x, y in pairwise(a))
    assert abs(a[-1] / 1999 - 0.25) < 0.02
    assert poisson_arrivals(3, float("inf"), 0) == [0.0] * 3
    with pytest.raises(ValueError):
        poisson_arrivals(3, 0, 0)


@pytest.fixture
def engines():
    es = [FakeEngine("e0", token_delay=0.005).start(), FakeEngine("e1", token_delay=0.005).start()]
    yield es
    for e in es:
        e.stop()


def check_dependencies(programs, calls):
    by = {(c.program_id, c.call_id): c for c in calls}
    for p in programs:
        for c in p.calls:
            for parent in c.parents:
                assert by[(p.id, c.id)].issue >= by[(p.id, parent)].finish + c.tool_delay - 1e-3


def test_replay_through_gateway(engines):
    gw = start_gateway([e.url for e in engines])
    try:
        programs = [chain("p0"), fanout("p1"), chain("p2", 2)]
        progs, calls = replay(programs, gw.url, rate=50.0, seed=3, api="chat",
                              program_prefix="run1-")
    finally:
        gw.stop()
    assert [p.program_id for p in progs] == ["p0", "p1", "p2"]
    assert all(isinstance(p, ProgramRecord) and p.status == "completed" for p in progs)
    assert len(calls) == 9 and all(isinstance(c, CallRecord) for c in calls)
    assert all(c.status == "completed" and c.first_token is not None for c in calls)
    assert {c.engine for c in calls} <= {e.url for e in engines}
    assert progs[1].output_tokens == 10 and progs[1].n_calls == 4
    check_dependencies(programs, calls)
    bodies = [b for e in engines for b in e.bodies]
    assert {b["vllm_xargs"]["program_id"] for b in bodies} == {"run1-p0", "run1-p1", "run1-p2"}
    assert all(b["ignore_eos"] and b["min_tokens"] == b["max_tokens"] for b in bodies)


def test_replay_direct_sends_only_vllm_fields(engines):
    e = engines[0]
    programs = [chain("p0"), fanout("p1")]
    progs, calls = replay(programs, e.url + "/v1", rate=100.0, seed=0, model="tiny",
                          priority_mode=True)
    assert all(p.status == "completed" for p in progs) and len(calls) == 7
    assert {c.engine for c in calls} == {e.url}
    allowed = {"model", "prompt", "max_tokens", "min_tokens", "ignore_eos", "stream",
               "stream_options", "priority"}
    assert all(set(b) <= allowed for b in e.bodies)
    prio = [b["priority"] for b, h in zip(e.bodies, e.headers, strict=True)
            if h["x-autellix-program"].endswith("p0")]
    assert prio == [0, 3, 7]  # output tokens served to the program before each call
    assert set(ProgramRecord.__dataclass_fields__) == set(type(progs[0]).__dataclass_fields__)


@pytest.mark.timeout(120)  # a hang fails the test; the calls' own 0.5 s timeouts end them
def test_replay_failures_are_recorded_and_never_hang(engines):
    for e in engines:
        e.mode = "hang"
    progs, calls = replay([chain("p0"), chain("p1")], engines[0].url, rate=100.0, seed=0,
                          model="tiny", timeout=0.5)
    assert [p.status for p in progs] == ["failed", "failed"]
    assert len(calls) == 2 and all(c.status == "failed" and "timed out" in c.error for c in calls)
    progs, calls = replay([chain("p0")], "http://127.0.0.1:18697", rate=1.0, seed=0,
                          model="tiny", timeout=2)
    assert progs[0].status == "failed" and "ConnectError" in calls[0].error


def test_max_tool_delay_caps_each_tool_delay_and_keeps_dependencies(engines):
    slow = Program("slow", (Call("a", (), 0, 5, 2), Call("b", ("a",), 7, 3, 2, 3600.0)))
    progs, calls = replay([slow], engines[0].url, rate=100.0, seed=0, model="tiny",
                          max_tool_delay=0.0)  # an hour-long tool run, skipped
    assert progs[0].status == "completed" and [c.call_id for c in calls] == ["a", "b"]
    assert calls[1].issue >= calls[0].finish
    with pytest.raises(ValueError, match="max_tool_delay"):
        replay([slow], engines[0].url, rate=1.0, seed=0, model="tiny", max_tool_delay=-1)
