"""Fitting replayed prompts to an engine's context: what is kept, what is clipped, and
that prefix caching still sees a growing shared context."""

from __future__ import annotations

from itertools import pairwise

import pytest

from autellix.program import Call, Program
from autellix.replay_fit import TOKEN_SLACK, ProgramText, PromptShaping
from autellix.workloads.registry import generate


def agent_loop(pid: str = "p", first: int = 300, turns: int = 12, obs: int = 90,
               out: int = 20) -> Program:
    """A swe-like chain: every call repeats all earlier context and adds an observation."""
    calls, shared = [], 0
    for t in range(turns):
        new = first if t == 0 else obs
        calls.append(Call(f"s{t}", (f"s{t-1}",) if t else (), shared, new, out))
        shared += new + out
    return Program(pid, tuple(calls), workload="test")


def test_every_fitted_call_fits_the_context_and_records_what_it_lost():
    p, mml = agent_loop(), 512
    shaping = PromptShaping(max_model_len=mml)
    text = ProgramText(p, shaping)
    for c in p.calls:
        sent, full = text.prompt(c), text.full(c)
        assert len(sent) + shaping.output(c) + TOKEN_SLACK <= mml
        assert len(full) == c.prompt_tokens  # the recorded length, before fitting
        assert text.clipped(c) == len(full) - len(sent)
        assert text.overflow(c) == 0
    assert sum(text.clipped(c) > 0 for c in p.calls) >= len(p.calls) // 2
    assert text.clipped(p.calls[0]) == 0  # 300 + 20 + 16 fits in 512


def test_fit_keeps_the_shared_prefix_and_the_newest_words():
    p = agent_loop()
    text = ProgramText(p, PromptShaping(max_model_len=512))
    root = text.full(p.calls[0])
    head = min(len(root), (512 - TOKEN_SLACK) // 2)
    for c in p.calls:
        sent, full = text.prompt(c), text.full(c)
        assert sent[:head] == root[:head]  # the system prompt / task survives every clip
        new = c.new_prompt_tokens
        assert sent[-new:] == full[-new:]  # the call's own observation is never clipped here
        if text.clipped(c):  # what is cut is one run of the oldest words after the prefix
            cut = text.clipped(c)
            assert sent == full[:head] + full[head + cut:]


def test_after_a_clip_children_extend_the_fitted_prompt_so_the_prefix_cache_hits():
    p = agent_loop(turns=20)
    shaping = PromptShaping(max_model_len=512)
    text = ProgramText(p, shaping)
    extended = 0
    for parent, child in pairwise(p.calls):
        if text.clipped(parent) and text.clipped(child) == text.clipped(parent):
            base = text.prompt(parent) + text._output(parent)  # inherited the parent's cut
            assert text.prompt(child)[:len(base)] == base
            extended += 1
    # clipping drops to half the window, so calls after a clip extend it instead of
    # shifting the kept words on every call (here: every other call)
    assert extended >= 8
    clips = [text.clipped(c) for c in p.calls]
    assert clips == sorted(clips)  # a chain's cut only grows


def test_a_first_prompt_longer_than_the_context_keeps_its_start_and_its_end():
    p = agent_loop(first=3000, turns=3)
    text = ProgramText(p, PromptShaping(max_model_len=2048))
    sent, full = text.prompt(p.calls[0]), text.full(p.calls[0])
    out = PromptShaping(max_model_len=2048).output(p.calls[0])
    assert len(sent) == 2048 - TOKEN_SLACK - out
    head = (2048 - TOKEN_SLACK) // 2
    assert sent[:head] == full[:head] and sent[head:] == full[len(full) - len(sent) + head:]


def test_no_fit_sends_whole_prompts_and_reports_the_overflow():
    p = agent_loop()
    text = ProgramText(p, PromptShaping(max_model_len=512, fit=False))
    assert all(text.prompt(c) == text.full(c) and text.clipped(c) == 0 for c in p.calls)
    over = [text.overflow(c) for c in p.calls]
    assert over[0] == 0 and over[-1] == p.calls[-1].prompt_tokens - (512 - TOKEN_SLACK - 20)


def test_without_a_context_length_prompts_keep_their_recorded_length():
    p = agent_loop()
    text = ProgramText(p, PromptShaping())
    assert [len(text.prompt(c)) for c in p.calls] == [c.prompt_tokens for c in p.calls]
    assert all(text.clipped(c) == 0 and text.overflow(c) == 0 for c in p.calls)


def test_fitted_prompts_do_not_depend_on_the_order_calls_are_built_in():
    p = agent_loop(turns=15)
    a, b = (ProgramText(p, PromptShaping(max_model_len=400)) for _ in range(2))
    forward = [a.prompt(c) for c in p.calls]
    backward = [b.prompt(c) for c in reversed(p.calls)][::-1]
    assert forward == backward


@pytest.mark.parametrize("workload", ["swe", "mixed", "mcts", "chatbot", "react"])
def test_every_builtin_workload_fits_a_2048_token_context(workload):
    shaping = PromptShaping(max_model_len=2048)
    for prog in generate(workload, 6, 0):
        text = ProgramText(prog, shaping)
        for c in prog.calls:
            assert len(text.prompt(c)) + shaping.output(c) + TOKEN_SLACK <= 2048
            assert len(text.prompt(c)) >= 1


def test_max_prompt_tokens_uses_the_same_fit():
    p = agent_loop()
    text = ProgramText(p, PromptShaping(max_prompt_tokens=200))
    root = text.full(p.calls[0])
    for c in p.calls:
        assert len(text.prompt(c)) <= 200 and text.prompt(c)[:100] == root[:100]
    # an explicit prompt cap clips even with --no-fit, which only concerns the context
    assert ProgramText(p, PromptShaping(max_prompt_tokens=200, fit=False)).clipped(p.calls[-1]) > 0
