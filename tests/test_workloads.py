"""Workload generators: targets, tails, determinism, DAG validity, round trips."""

from __future__ import annotations

import io
from collections import Counter
from itertools import pairwise

import numpy as np
import pytest

from autellix.program import dump_programs, load_programs, save_programs
from autellix.workloads import stats
from autellix.workloads.distributions import int_lognormal
from autellix.workloads.registry import DESCRIPTIONS, GENERATORS, generate, parameters

SIZES = {"chatbot": 1000, "react": 1000, "mcts": 200, "swe": 1000, "mixed": 600}
_CACHE: dict = {}


def workload(name: str, seed: int = 0):
    key = (name, seed)
    if key not in _CACHE:
        _CACHE[key] = generate(name, SIZES[name], seed)
    return _CACHE[key]


def jsonl(programs) -> str:
    buf = io.StringIO()
    dump_programs(programs, buf)
    return buf.getvalue()


def test_registry_lists_every_generator_with_a_description():
    assert set(GENERATORS) == {"chatbot", "react", "mcts", "swe", "mixed", "longctx"}
    assert set(DESCRIPTIONS) == set(GENERATORS)
    assert set(stats.TARGETS) == set(GENERATORS)
    assert parameters("react")["tool_delay_median"] == 0.5


@pytest.mark.parametrize("name", sorted(SIZES))
@pytest.mark.parametrize("seed", [0, 1])
def test_means_match_documented_targets_within_10_percent(name, seed):
    rows = stats.compare(stats.describe(workload(name, seed)), name)
    assert rows, f"{name} has no targets"
    for metric, target, measured, err in rows:
        assert abs(err) <= 0.10, f"{name} seed {seed}: {metric} = {measured:.2f}, target {target}"


def test_heavy_tails_are_kept():
    chat = stats.describe(generate("chatbot", 2000, 7))["calls_per_program"]
    assert 40 <= chat["max"] <= 80 and chat["p50"] < chat["mean"]
    assert chat["p99"] >= 4 * chat["mean"]
    react = stats.describe(workload("react"))["calls_per_program"]
    assert 35 <= react["max"] <= 70 and react["p50"] < react["mean"]
    mcts = stats.describe(workload("mcts"))["calls_per_program"]
    assert 300 <= mcts["max"] <= 400 and mcts["p50"] < mcts["mean"]
    swe = stats.describe(workload("swe"))
    assert swe["calls_per_program"]["max"] >= 100
    assert swe["prompt_tokens"]["max"] >= 50_000 and swe["prompt_tokens"]["p50"] >= 5_000


def test_the_cap_of_80_chatbot_calls_is_reachable():
    d = int_lognormal(6.66, 1.0, 1, 80)
    assert 1 - (1 - d.pmf[-1]) ** 1000 > 0.5  # 1000 programs reach 80 more often than not


@pytest.mark.parametrize("name", sorted(SIZES))
def test_same_seed_gives_identical_jsonl_and_another_seed_differs(name):
    n = 30
    assert jsonl(generate(name, n, 5)) == jsonl(generate(name, n, 5))
    assert jsonl(generate(name, n, 5)) != jsonl(generate(name, n, 6))


@pytest.mark.parametrize("name", ["chatbot", "react", "mcts", "swe", "mixed"])
def test_program_i_does_not_depend_on_n(name):
    assert jsonl(generate(name, 5, 3)) == jsonl(generate(name, 40, 3)[:5])
    assert jsonl(generate(name, 7, 3)) == jsonl(generate(name, 8, 3)[:7])  # n % 3 differs


@pytest.mark.parametrize("name", sorted(SIZES))
def test_programs_are_valid_dags_with_stable_ids(name):
    programs = workload(name)
    assert len({p.id for p in programs}) == len(programs)
    assert all(p.id == f"{name}-0-{i}" for i, p in enumerate(programs))
    for p in programs:
        assert p.workload == (name if name != "mixed" else p.workload) and p.workload in GENERATORS
        seen: dict = {}
        for c in p.calls:
            assert all(q in seen for q in c.parents)
            if c.parents:  # shared context never exceeds the first parent's prompt + output
                first = seen[c.parents[0]]
                assert c.shared_prompt_tokens <= first.prompt_tokens + first.output_tokens
            else:
                assert c.shared_prompt_tokens == 0 and c.tool_delay == 0
            seen[c.id] = c


@pytest.mark.parametrize("name", ["chatbot", "react", "swe"])
def test_chains_carry_the_whole_history(name):
    for p in workload(name)[:50]:
        assert p.kind == "single" and p.depth() == len(p.calls)
        for prev, c in pairwise(p.calls):
            assert c.shared_prompt_tokens == prev.prompt_tokens + prev.output_tokens


def test_mcts_fans_out_five_and_joins():
    for p in workload("mcts")[:20]:
        assert p.kind == "multi" and p.width() == 5
        iterations = len(p.calls) // 12
        assert len(p.calls) == 12 * iterations and p.depth() == 4 * iterations
        joins = [c for c in p.calls if c.id.endswith(".J")]
        assert len(joins) == iterations and all(len(j.parents) == 5 for j in joins)
        children = p.children()
        assert all(len(children[c.id]) == 5 for c in p.calls if c.id.endswith(".E"))


def test_mixed_is_an_equal_interleaved_mix():
    programs = generate("mixed", 301, 2)
    counts = Counter(p.workload for p in programs)
    assert set(counts) == {"chatbot", "react", "mcts"}
    assert max(counts.values()) - min(counts.values()) <= 1
    for m in range(1, 40):  # every prefix is as equal a mix as it can be
        prefix = Counter(p.workload for p in programs[:m])
        assert max(prefix.values()) - min(prefix.get(k, 0) for k in counts) <= 1
    assert [p.workload for p in programs[:30]] != sorted(p.workload for p in programs[:30])
    with_swe = Counter(p.workload for p in generate("mixed", 40, 2, include_swe=True))
    assert with_swe == {"chatbot": 10, "react": 10, "mcts": 10, "swe": 10}


def test_tool_and_think_delays_follow_the_documented_defaults():
    react = stats.describe(workload("react"))["tool_delay"]
    assert 0.4 <= react["p50"] <= 0.6 and react["max"] <= 30
    assert stats.describe(workload("chatbot"))["tool_delay"]["max"] == 0
    thinking = stats.describe(generate("chatbot", 200, 0, think_time=3.0))["tool_delay"]
    assert 2.0 <= thinking["mean"] <= 4.0
    quiet = stats.describe(generate("react", 50, 0, tool_delay_median=0))["tool_delay"]
    assert quiet["max"] == 0


def test_jsonl_round_trip(tmp_path):
    programs = generate("mixed", 24, 9)
    path = tmp_path / "w.jsonl"
    assert save_programs(programs, path, workload="mixed", seed=9) == 24
    assert load_programs(path) == programs


def test_bad_names_and_parameters_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown workload"):
        generate("nope", 3, 0)
    with pytest.raises(ValueError, match="bad parameter"):
        generate("chatbot", 3, 0, warp=9)
    with pytest.raises(ValueError, match="prompt_mean"):
        generate("react", 3, 0, prompt_mean=100)
    with pytest.raises(ValueError, match="unknown components"):
        generate("mixed", 3, 0, component_params={"zzz": {}})


def test_describe_on_a_hand_built_workload():
    from autellix.program import Call, Program
    chain = Program("a", (Call("x", new_prompt_tokens=10, output_tokens=4),
                          Call("y", ("x",), 14, 6, 2, tool_delay=1.5)))
    fan = Program("b", (Call("r", new_prompt_tokens=4, output_tokens=2),
                        Call("c1", ("r",), 6, 1, 8), Call("c2", ("r",), 6, 3, 8)))
    s = stats.describe([chain, fan])
    assert s["programs"] == 2 and s["calls"] == 5
    assert s["calls_per_program"]["mean"] == 2.5 and s["calls_per_program"]["max"] == 3
    assert s["prompt_tokens"]["mean"] == pytest.approx((10 + 20 + 4 + 7 + 9) / 5)
    assert s["new_prompt_tokens"]["mean"] == pytest.approx((10 + 6 + 4 + 1 + 3) / 5)
    assert s["output_tokens"]["max"] == 8
    assert s["width"] == {"mean": 1.5, "max": 2.0} and s["depth"] == {"mean": 2.0, "max": 2.0}
    assert s["tool_delay"]["max"] == 1.5 and s["single_share"] == 0.5 and s["multi_share"] == 0.5
    assert stats.describe([])["calls"] == 0
    assert np.isfinite(stats.describe([chain])["shared_prompt_share"])
