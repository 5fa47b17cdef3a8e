"""Simulator behaviour: the paper's effects on hand-built cases, cost-model sanity,
determinism, failure handling."""

import pytest
from simutil import chain, fan

from autellix.config import QueueConfig
from autellix.program import Call, Program
from autellix.sim import EngineConfig, SimConfig, simulate
from autellix.sim.costmodel import CostModel, list_profiles, load_profile
from autellix.sim.events import Arrival, EventKind, EventQueue, Issue, StepEnd
from autellix.sim.simulation import Simulation


def run(programs, policy, arrivals, **engine):
    cfg = SimConfig(policy=policy, engine=EngineConfig(**engine), check_invariants=True,
                    queue=QueueConfig(boundaries=(0.05, 0.1, 0.2, 0.4, 0.8, 1.6)))
    res = Simulation(programs, cfg, arrivals=arrivals).run()
    return {p.program_id: p for p in res.programs}, res


def test_plas_short_program_overtakes_long_program():
    # two long chat programs keep one seat busy; a one-call program arrives later
    longs = [chain(f"L{i}", [120] * 6) for i in range(2)]
    short = chain("S", [20])
    progs = longs + [short]
    arr = [0.0, 0.001, 3.0]
    fcfs, _ = run(progs, "fcfs", arr, max_num_seqs=1)
    plas, res = run(progs, "plas", arr, max_num_seqs=1)
    assert plas["S"].e2e < 0.5 * fcfs["S"].e2e
    # under PLAS the short program finishes before the long programs' calls that were
    # queued when it arrived even start (under FCFS they run first)
    s_done = plas["S"].finish
    queued = [c for c in res.calls
              if c.program_id.startswith("L") and c.issue < 3.0 < c.first_token]
    assert queued and all(c.first_token > s_done for c in queued)
    _, fres = run(progs, "fcfs", arr, max_num_seqs=1)
    fqueued = [c for c in fres.calls
               if c.program_id.startswith("L") and c.issue < 3.0 < c.first_token]
    assert any(c.first_token < fcfs["S"].finish for c in fqueued)
    assert sum(p.e2e for p in plas.values()) < sum(p.e2e for p in fcfs.values())


def test_atlas_beats_mlfq_on_a_dag():
    # A: a long root then 3 parallel children; B: one short call arriving while
    # A's children wait. MLFQ puts A's children (new calls) in Q1 ahead of B;
    # ATLAS gives them A's critical-path service, so B goes first.
    a = fan("A", root_out=200, child_outs=[60, 60, 60])
    b = chain("B", [20])
    arr = [0.0, 2.5]
    atlas, _ = run([a, b], "atlas", arr, max_num_seqs=1)
    mlfq, _ = run([a, b], "mlfq", arr, max_num_seqs=1)
    assert atlas["B"].e2e < mlfq["B"].e2e
    def mean(r):
        return sum(p.e2e for p in r.values()) / len(r)

    assert mean(atlas) < mean(mlfq)


def test_atlas_gang_schedules_parallel_threads():
    # all children of one program share one priority, so every child of A is admitted
    # (first token) before any child of B. Later, A's children demote and may give way
    # to B's (strict higher-level eviction after the progress guard; issue 10).
    a = fan("A", root_out=5, child_outs=[40] * 4)
    b = fan("B", root_out=5, child_outs=[40] * 4)
    _, res = run([a, b], "atlas", [0.0, 0.0001], max_num_seqs=2)
    kids = [c for c in res.calls if c.call_id.startswith("k")]
    last_a = max(c.first_token for c in kids if c.program_id == "A")
    first_b = min(c.first_token for c in kids if c.program_id == "B")
    assert last_a < first_b


def test_batch_formation_stops_at_first_call_that_does_not_fit():
    # KV holds 20 blocks of 16 tokens. A's big second call does not fit while
    # B runs; C's small call would fit, but strict order forbids backfilling.
    big = Program(id="A", calls=(Call(id="c0", new_prompt_tokens=8, output_tokens=2),
                                 Call(id="c1", parents=("c0",), new_prompt_tokens=250,
                                      output_tokens=8)), workload="t")
    b = chain("B", [100], new_prompt=64)
    c = chain("C", [4], new_prompt=8)
    progs, res = run([b, big, c], "fcfs", [0.0, 0.0, 0.05], max_num_seqs=8,
                     kv_capacity_tokens=320, block_size=16)
    a1 = next(x for x in res.calls if x.program_id == "A" and x.call_id == "c1")
    cc = next(x for x in res.calls if x.program_id == "C")
    assert a1.issue < cc.issue
    assert cc.finish > a1.first_token  # C waited behind A's call


def test_priority_preemption_at_the_sequence_limit():
    longp = chain("L", [60, 400])
    short = chain("S", [10])
    progs, res = run([longp, short], "plas", [0.0, 1.5], max_num_seqs=1)
    lcall = next(c for c in res.calls if c.program_id == "L" and c.call_id == "c1")
    scall = next(c for c in res.calls if c.program_id == "S")
    assert lcall.preemptions >= 1 and scall.finish < lcall.finish
    _, fres = run([longp, short], "fcfs", [0.0, 1.5], max_num_seqs=1)
    assert sum(c.preemptions for c in fres.calls) == 0  # FCFS never preempts for priority


def test_swap_preemption_moves_bytes():
    longp = chain("L", [60, 400])
    short = chain("S", [10])
    _, res = run([longp, short], "plas", [0.0, 1.5], max_num_seqs=1, preemption="swap")
    assert res.summary().extra["swapped_bytes"] > 0


def test_prefix_cache_reuses_program_context():
    p = chain("P", [50] * 5, new_prompt=64)
    _, res = run([p], "fcfs", [0.0])
    assert res.summary().extra["prefix_hit_rate"] > 0.5
    _, res2 = run([p], "fcfs", [0.0], prefix_caching=False)
    assert res2.summary().extra["prefix_hit_rate"] == 0


def test_call_too_big_for_the_engine_fails_with_reason_and_nothing_vanishes():
    p = chain("P", [10, 10000], new_prompt=16)
    _, res = run([p], "atlas", [0.0], kv_capacity_tokens=1600, block_size=16)
    statuses = {c.call_id: (c.status, c.error) for c in res.calls}
    assert statuses["c0"][0] == "completed"
    assert statuses["c1"][0] == "failed" and "KV blocks" in statuses["c1"][1]
    assert res.programs[0].status == "failed"


def test_time_limit_aborts_every_unfinished_call():
    progs = [chain(f"P{i}", [200] * 3) for i in range(6)]
    res = simulate(progs, SimConfig(policy="atlas", rate=1.0, max_sim_time=3.0))
    assert len(res.programs) == 6
    assert len(res.calls) == 18
    assert {c.status for c in res.calls} <= {"completed", "aborted"}
    assert any(c.status == "aborted" for c in res.calls)


def test_determinism_same_seed_same_results():
    progs = [chain(f"P{i}", [30 + 10 * (i % 4)] * (1 + i % 5)) for i in range(30)] + \
            [fan(f"F{i}", 20, [15] * 4, join_out=10) for i in range(10)]
    cfg = SimConfig(policy="atlas", rate=4.0, seed=7, engine=EngineConfig(max_num_seqs=4))
    a, b = simulate(progs, cfg), simulate(progs, cfg)
    assert [p.to_row() for p in a.programs] == [p.to_row() for p in b.programs]
    c = simulate(progs, SimConfig(policy="atlas", rate=4.0, seed=8,
                                  engine=EngineConfig(max_num_seqs=4)))
    assert [p.to_row() for p in a.programs] != [p.to_row() for p in c.programs]


def test_events_order_by_time_then_step_end_issue_arrival_then_push_order():
    q = EventQueue()
    prog = chain("P", [1])
    q.push(1.0, EventKind.ARRIVAL, Arrival(prog))
    q.push(1.0, EventKind.ISSUE, Issue("P", "iss"))
    q.push(1.0, EventKind.STEP_END, StepEnd(0, 1))
    q.push(0.5, EventKind.ARRIVAL, Arrival(chain("E", [1])))
    q.push(1.0, EventKind.ISSUE, Issue("P", "iss2"))
    order = [q.pop() for _ in range(5)]
    assert [e.kind for e in order] == [EventKind.ARRIVAL, EventKind.STEP_END, EventKind.ISSUE,
                                       EventKind.ISSUE, EventKind.ARRIVAL]
    assert order[0].payload.program.id == "E" and order[-1].payload.program is prog
    assert [e.payload.call_id for e in order[2:4]] == ["iss", "iss2"]
    assert not q


def test_fast_forward_is_exact():
    progs = [chain(f"P{i}", [80, 120, 60]) for i in range(12)]
    base = dict(policy="atlas", rate=3.0, seed=1)
    a = simulate(progs, SimConfig(**base, engine=EngineConfig(max_num_seqs=6)))
    b = simulate(progs, SimConfig(**base, engine=EngineConfig(max_num_seqs=6, fast_forward=False)))
    for x, y in zip(a.programs, b.programs, strict=True):
        assert x.program_id == y.program_id and x.finish == pytest.approx(y.finish, rel=1e-9)


def test_cost_model_sanity_targets():
    a100 = CostModel(load_profile("a100-80gb-llama-3.1-8b"))
    h100 = CostModel(load_profile("h100-80gb-llama-3.1-8b"))
    # decode, batch 1, 1k context: ~10.4 ms + overhead on A100, ~6.3 ms + overhead on H100
    assert a100.step_seconds([], 1, 1024, 1) * 1e3 == pytest.approx(10.4 + 1.0, rel=0.05)
    assert h100.step_seconds([], 1, 1024, 1) * 1e3 == pytest.approx(6.3 + 0.3, rel=0.05)
    # prefill 2k: ~150 ms on A100, ~50 ms on H100; 4k on A100 ~300 ms
    assert a100.step_seconds([(2048, 2048)], 0, 0, 1) * 1e3 == pytest.approx(150, rel=0.07)
    assert h100.step_seconds([(2048, 2048)], 0, 0, 1) * 1e3 == pytest.approx(50, rel=0.15)
    assert a100.step_seconds([(4096, 4096)], 0, 0, 1) * 1e3 == pytest.approx(300, rel=0.07)
    # prefill-heavy ceiling (a batch of four 2k prompts): ~13-15k tok/s A100, ~40-46k H100
    four = [(2048, 2048)] * 4
    assert 13e3 <= 8192 / a100.step_seconds(four, 0, 0, 4) <= 15.5e3
    assert 38e3 <= 8192 / h100.step_seconds(four, 0, 0, 4) <= 47e3
    assert set(list_profiles()) >= {"a100-80gb-llama-3.1-8b", "h100-80gb-llama-3.1-8b",
                                     "4xa100-80gb-llama-3.1-70b"}
    with pytest.raises(ValueError, match="unknown cost profile"):
        load_profile("tpu")


def test_decode_run_closed_form_matches_step_sum():
    m = CostModel(load_profile("a100-80gb-llama-3.1-8b"))
    total = sum(m.step_seconds([], 5, 1000 + 5 * i, 5) for i in range(37))
    assert m.decode_run_seconds(5, 1000, 37) == pytest.approx(total, rel=1e-12)


def test_without_chunked_prefill_a_prefill_step_runs_no_decodes():
    """vLLM 0.6.1's scheduler (chunked_prefill=False): whole-prompt steps, no mixing."""
    progs = [Program(id="A", calls=(Call(id="c", new_prompt_tokens=64, output_tokens=300),)),
             Program(id="B", calls=(Call(id="c", new_prompt_tokens=6000, output_tokens=4),))]
    steps = {}
    for chunked in (True, False):
        sim = Simulation(progs, SimConfig(policy="fcfs", check_invariants=True,
                                          engine=EngineConfig(chunked_prefill=chunked)),
                         arrivals=[0.0, 0.5])
        seen = []
        original = sim.cost.step_seconds

        def record(chunks, n_decode, ctx, n_samp, _orig=original, _seen=seen):
            chunks = list(chunks)
            _seen.append((sum(e for e, _ in chunks), n_decode))
            return _orig(chunks, n_decode, ctx, n_samp)

        sim.cost.step_seconds = record
        res = sim.run()
        assert all(p.status == "completed" for p in res.programs)
        steps[chunked] = seen
    assert any(pf and dec for pf, dec in steps[True])       # chunks mixed with decodes
    assert not any(pf and dec for pf, dec in steps[False])  # never mixed
    assert (6000, 0) in steps[False]                         # B's prompt in one step
