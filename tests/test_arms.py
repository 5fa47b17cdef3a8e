"""Arms are data: a policy plus the engine features that define a baseline, nothing else."""

import pytest

from autellix.arms import NAMED_ARMS, arm_names, get_arm
from autellix.config import ConfigError
from autellix.policies import POLICIES, REAL_ENGINE_POLICIES
from autellix.sim import EngineConfig, SimConfig


def test_named_baselines_differ_only_in_policy_and_defining_engine_features():
    base = SimConfig(engine=EngineConfig(max_num_seqs=64, preemption="swap"), seed=3, rate=2.0)
    vllm, opt, prio = (get_arm(n).sim_config(base) for n in ("vllm", "vllm-opt", "vllm-priority"))
    e = vllm.engine
    assert (vllm.policy, e.prefix_caching, e.chunked_prefill) == ("fcfs", False, False)
    assert opt == base.__class__(**{**base.__dict__, "policy": "fcfs"})
    assert prio.policy == "program-priority" and not POLICIES["program-priority"].preempts
    for cfg in (vllm, opt, prio):  # everything else is shared
        got = (cfg.seed, cfg.rate, cfg.engine.max_num_seqs, cfg.engine.preemption)
        assert got == (3, 2.0, 64, "swap")


def test_every_policy_is_an_arm_and_unknown_names_say_what_exists():
    assert set(POLICIES) <= set(arm_names()) and set(NAMED_ARMS) <= set(arm_names())
    assert get_arm("atlas").sim_config(SimConfig()).policy == "atlas"
    with pytest.raises(ValueError, match="unknown policy or arm 'magic'.*vllm-opt"):
        get_arm("magic")


def test_arm_definitions_are_validated():
    from autellix.arms import Arm

    with pytest.raises(ConfigError, match="no engine setting 'cache'"):
        Arm("x", "fcfs", (("cache", False),))
    with pytest.raises(ConfigError, match="unknown policy"):
        Arm("x", "nope")


def test_the_non_preemptive_priority_policy_is_not_offered_to_the_vllm_plugin():
    assert "program-priority" not in REAL_ENGINE_POLICIES and "plas" in REAL_ENGINE_POLICIES


def test_las_router_is_an_admission_only_arm_the_plugin_does_not_run():
    p = POLICIES["las-router"]
    assert (p.table_rule, p.preempts, p.multilevel) == ("decay", False, False)
    assert get_arm("las-router").sim_config(SimConfig()).policy == "las-router"
    assert "las-router" not in REAL_ENGINE_POLICIES


def test_the_decay_rule_halves_past_service_every_half_life():
    from autellix.process_table import ProcessTable

    t = ProcessTable(rule="decay", half_life=10.0)
    t.call_arrived("p", "c1", 0.0)
    assert t.call_finished("p", "c1", 8.0, 0.0, 0.0) == 8.0
    # 10 s later, a new call copies half of it as its priority; its own service adds
    assert t.call_arrived("p", "c2", 10.0).priority == pytest.approx(4.0)
    assert t.call_finished("p", "c2", 1.0, 0.0, 20.0) == pytest.approx(3.0)  # 4/2 + 1
    plas = ProcessTable(rule="sum")  # without decay the past never fades
    plas.call_arrived("p", "c1", 0.0)
    plas.call_finished("p", "c1", 8.0, 0.0, 0.0)
    assert plas.call_arrived("p", "c2", 10.0).priority == 8.0
    with pytest.raises(ConfigError, match="half_life"):
        ProcessTable(rule="decay", half_life=0)


def test_las_router_admits_the_least_served_program_first_where_fcfs_does_not():
    """One seat. A's first call is short, so A's second call queues (at t ~ 0.01 s)
    behind X's long call; B arrives at 0.5 s with no service yet. When X ends, FCFS
    runs A's earlier call; las-router runs B, whose program has received less."""
    from simutil import chain

    from autellix.sim.simulation import Simulation

    progs = [chain("A", [2, 8], new_prompt=16), chain("X", [400], new_prompt=16),
             chain("B", [8], new_prompt=16)]
    first = {}
    for policy in ("fcfs", "las-router"):
        cfg = SimConfig(policy=policy, engine=EngineConfig(max_num_seqs=1),
                        check_invariants=True)
        res = Simulation(progs, cfg, arrivals=[0.0, 1e-6, 0.5]).run()
        assert {p.status for p in res.programs} == {"completed"}
        start = {(c.program_id, c.call_id): c.first_token for c in res.calls}
        x = next(c for c in res.calls if c.program_id == "X")
        assert x.first_token < 0.5 < x.finish  # X holds the seat when B arrives
        first[policy] = min((("A", "c1"), ("B", "c0")), key=start.__getitem__)[0]
    assert first == {"fcfs": "A", "las-router": "B"}
