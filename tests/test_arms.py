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
