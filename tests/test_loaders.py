"""Loaders on small real-format fixtures written into tmp_path."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest

from autellix.program import TraceError, save_programs
from autellix.workloads.loaders import bfcl_files, find_bfcl_data, load
from autellix.workloads.loaders.sharegpt import iter_array
from autellix.workloads.loaders.tokens import token_counter


class WordTokenizer:
    def encode(self, text):
        return text.split()


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


SHAREGPT = [
    {"id": "a", "conversations": [
        {"from": "system", "value": "be nice"},
        {"from": "human", "value": "hello there"},
        {"from": "gpt", "value": "hi how can I help"},
        {"from": "human", "value": "tell me a joke"},
        {"from": "gpt", "value": "no"}]},
    {"id": "b", "conversations": [{"from": "human", "value": "only a question"}]},
    {"id": "a", "conversations": [{"from": "human", "value": "x y"},
                                  {"from": "gpt", "value": "z"}]},
    {"id": "c", "conversations": [{"from": "human", "value": "q"},
                                  {"from": "gpt", "value": "r s"}]},
]


def test_sharegpt_one_call_per_gpt_turn_with_history(tmp_path):
    path = tmp_path / "sg.json"
    path.write_text(json.dumps(SHAREGPT, indent=1))
    progs = load("sharegpt", path, tokenizer=WordTokenizer())
    assert [p.id for p in progs] == ["sharegpt-a", "sharegpt-a#2", "sharegpt-c"]
    first = progs[0]
    assert first.workload == "chatbot" and first.kind == "single" and len(first.calls) == 2
    c0, c1 = first.calls
    assert (c0.shared_prompt_tokens, c0.new_prompt_tokens, c0.output_tokens) == (0, 4, 5)
    assert (c1.shared_prompt_tokens, c1.new_prompt_tokens, c1.output_tokens) == (9, 4, 1)
    assert c1.parents == ("t0",)
    assert len(load("sharegpt", path, limit=1)) == 1


def test_sharegpt_approximate_counts_are_four_chars_per_token(tmp_path):
    count = token_counter()
    assert count("") == 0 and count("abcd") == 1 and count("abcde") == 2
    path = tmp_path / "sg.json"
    path.write_text(json.dumps([{"id": "x", "conversations": [
        {"from": "human", "value": "a" * 40}, {"from": "gpt", "value": "b" * 41}]}]))
    (call,) = load("sharegpt", path)[0].calls
    assert (call.new_prompt_tokens, call.output_tokens) == (10, 11)


def test_sharegpt_truncated_file_keeps_complete_conversations(tmp_path):
    text = json.dumps(SHAREGPT, indent=2)
    cut = text.index('"c"')  # inside the last conversation
    path = tmp_path / "cut.json"
    path.write_text(text[:cut])
    with pytest.warns(UserWarning, match="truncated"):
        progs = load("sharegpt", path)
    assert [p.id for p in progs] == ["sharegpt-a", "sharegpt-a#2"]
    unclosed = tmp_path / "unclosed.json"
    unclosed.write_text(text.rstrip().rstrip("]"))
    with pytest.warns(UserWarning, match="not closed"):
        assert len(load("sharegpt", unclosed)) == 3


def test_sharegpt_stream_parser_crosses_chunk_boundaries(tmp_path):
    path = tmp_path / "sg.json"
    path.write_text(json.dumps(SHAREGPT))
    assert list(iter_array(path, chunk_chars=7)) == SHAREGPT


@pytest.mark.parametrize("content, message", [
    ('{"id": "a"}', "not a JSON array"),
    ('[{"id": "a", "conv": []}]', "'conversations' list"),
    ('[{"id": "a", "conversations": [{"value": "x"}]}]', "needs 'from' and 'value'"),
    ('[{"id": "a", "conversations": [{"fr', "no complete conversation"),
    ("", "empty file"),
])
def test_sharegpt_malformed_input_raises_trace_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(TraceError, match=message):
        load("sharegpt", path)


BFCL_ENTRIES = [
    {"id": "multi_turn_base_0", "involved_classes": ["MathAPI"],
     "question": [[{"role": "user", "content": "add two and three"}],
                  [{"role": "user", "content": "now double it"}]]},
    {"id": "multi_turn_base_1", "involved_classes": ["MathAPI"],
     "question": [[{"role": "user", "content": "hello"}], []]},
]
BFCL_ANSWERS = [
    {"id": "multi_turn_base_0",
     "ground_truth": [["add(a=2, b=3)"], ["multiply(a=5, b=2)", "round_number(number=10)"]]},
    {"id": "multi_turn_base_1", "ground_truth": [[], ["mean(numbers=[1])"]]},
]


def bfcl_fixture(tmp_path):
    questions = write_jsonl(tmp_path / "BFCL_v4_multi_turn_base.json", BFCL_ENTRIES)
    answers = write_jsonl(tmp_path / "answers.json", BFCL_ANSWERS)
    docs = tmp_path / "multi_turn_func_doc"
    docs.mkdir()
    write_jsonl(docs / "math_api.json", [{"name": "add", "description": "Add two numbers"}])
    return questions, answers, docs


def test_bfcl_steps_follow_ground_truth_and_docs_lead_the_prompt(tmp_path):
    questions, answers, docs = bfcl_fixture(tmp_path)
    tok = WordTokenizer()
    progs = load("bfcl", questions, tokenizer=tok, answers_path=answers, func_doc_dir=docs,
                 tool_delay=0.5)
    assert [p.id for p in progs] == ["bfcl-multi_turn_base_0", "bfcl-multi_turn_base_1"]
    p = progs[0]
    assert p.workload == "react" and p.kind == "single"
    assert len(p.calls) == (1 + 1) + (2 + 1)
    doc_tokens = len((docs / "math_api.json").read_text().split())
    assert p.calls[0].new_prompt_tokens == doc_tokens + 4
    assert p.calls[0].output_tokens == 2  # "add(a=2, b=3)" splits into two words
    assert p.calls[1].new_prompt_tokens == 20 and p.calls[1].tool_delay == 0.5
    assert p.calls[2].new_prompt_tokens == 3 and p.calls[2].tool_delay == 0.0  # next user turn
    assert p.calls[-1].output_tokens == 34
    for prev, c in pairwise(p.calls):
        assert c.shared_prompt_tokens == prev.prompt_tokens + prev.output_tokens
    assert len(progs[1].calls) == 1 + 2  # an empty turn still takes its steps


def test_bfcl_without_answers_uses_steps_per_turn(tmp_path):
    questions, _, _ = bfcl_fixture(tmp_path)
    progs = load("bfcl", questions, steps_per_turn=4)
    assert [len(p.calls) for p in progs] == [8, 8]
    assert progs[0].calls[0].new_prompt_tokens == 5  # "add two and three" = 17 chars


@pytest.mark.parametrize("line, message", [
    ("not json", r":1: not valid JSON"),
    ('{"id": "x", "question": "hi"}', "must be a list of turns"),
    ('{"question": []}', "with an 'id'"),
])
def test_bfcl_malformed_input_raises_trace_error(tmp_path, line, message):
    path = tmp_path / "bad.json"
    path.write_text(line + "\n")
    with pytest.raises(TraceError, match=message):
        load("bfcl", path)


def test_bfcl_files_inside_an_installed_package():
    if find_bfcl_data() is None:
        pytest.skip("bfcl-eval is not installed")
    files = bfcl_files("multi_turn_base")
    progs = load("bfcl", files["questions"], answers_path=files["answers"],
                 func_doc_dir=files["func_docs"], limit=20)
    assert len(progs) == 20


SWE_ROWS = [
    {"instance_id": "astropy__astropy-1", "target": True, "trajectory": [
        {"role": "system", "text": "you are an agent", "system_prompt": "x"},
        {"role": "user", "text": "fix the bug please"},
        {"role": "ai", "text": "let me look find_file x"},
        {"role": "user", "text": "found one file"},
        {"role": "ai", "text": "submit"}]},
    {"instance_id": "astropy__astropy-1", "target": False, "trajectory": [
        {"role": "user", "text": "only an issue"}]},
]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_swe_agent_trajectories_from_jsonl_and_parquet(tmp_path, suffix):
    path = tmp_path / f"swe{suffix}"
    if suffix == ".jsonl":
        write_jsonl(path, SWE_ROWS)
    else:
        import datasets
        datasets.Dataset.from_list(SWE_ROWS).to_parquet(str(path))
    progs = load("swe-agent", path, tokenizer=WordTokenizer(), tool_delay=2.0)
    assert [p.id for p in progs] == ["swe-astropy__astropy-1-0"]
    c0, c1 = progs[0].calls
    assert (c0.new_prompt_tokens, c0.output_tokens) == (8, 5)
    assert (c1.shared_prompt_tokens, c1.new_prompt_tokens, c1.output_tokens) == (13, 3, 1)
    assert c1.tool_delay == 2.0 and progs[0].workload == "swe"


def test_swe_agent_malformed_input_raises_trace_error(tmp_path):
    no_traj = write_jsonl(tmp_path / "a.jsonl", [{"instance_id": "x", "messages": []}])
    with pytest.raises(TraceError, match="no 'trajectory' column"):
        load("swe-agent", no_traj)
    garbage = tmp_path / "b.jsonl"
    garbage.write_text("{not json\n")
    with pytest.raises(TraceError, match="cannot read as json"):
        load("swe-agent", garbage)
    with pytest.raises(TraceError, match="expected a .parquet"):
        load("swe-agent", (tmp_path / "c.txt").write_text("x") and tmp_path / "c.txt")
    with pytest.raises(TraceError, match="not found"):
        load("swe-agent", tmp_path / "missing.parquet")


MOONCAKE = [
    {"timestamp": 0, "input_length": 1200, "output_length": 100, "hash_ids": [0, 1, 2]},
    {"timestamp": 0, "input_length": 700, "output_length": 50, "hash_ids": [0, 5]},
    {"timestamp": 3000, "input_length": 2300, "output_length": 80, "hash_ids": [0, 1, 2, 3, 4]},
    {"timestamp": 6000, "input_length": 3400, "output_length": 30,
     "hash_ids": [0, 1, 2, 3, 4, 6, 7]},
    {"timestamp": 6000, "input_length": 1100, "output_length": 9, "hash_ids": [0, 5, 8]},
    {"timestamp": 9000, "input_length": 900, "output_length": 9, "hash_ids": [0, 9]},
]


def test_mooncake_sessions_from_hash_prefixes(tmp_path):
    path = write_jsonl(tmp_path / "conv.jsonl", MOONCAKE)
    progs = load("mooncake", path)
    assert [len(p.calls) for p in progs] == [3, 2, 1]  # block 0 alone links nothing
    chain = progs[0]
    assert chain.workload == "mooncake" and chain.arrival == 0.0 and chain.kind == "single"
    c0, c1, c2 = chain.calls
    assert c1.shared_prompt_tokens == 1300 and c1.new_prompt_tokens == 1000  # capped by parent
    assert c1.tool_delay == 3.0 and c2.shared_prompt_tokens == 2380
    assert progs[1].calls[1].shared_prompt_tokens == 750
    assert progs[2].arrival == 9.0
    zero = load("mooncake", path, delay="zero", block_size=256)
    assert all(c.tool_delay == 0 for p in zero for c in p.calls)
    assert zero[0].calls[1].shared_prompt_tokens == 768


def test_mooncake_malformed_input_raises_trace_error(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"timestamp": 0, "input_length": 5}])
    with pytest.raises(TraceError, match=r"a.jsonl:1: missing field"):
        load("mooncake", path)
    path.write_text('{"timestamp": 0, "input_length": "many", "output_length": 1, '
                    '"hash_ids": []}\n')
    with pytest.raises(TraceError, match="must be integers"):
        load("mooncake", path)


BAILIAN = [
    {"chat_id": 1, "parent_chat_id": -1, "turn": 1, "timestamp": 10.0, "input_length": 40,
     "output_length": 8, "hash_ids": [1, 2, 3], "type": "text"},
    {"chat_id": 2, "parent_chat_id": 1, "turn": 2, "timestamp": 12.5, "input_length": 70,
     "output_length": 5, "hash_ids": [1, 2, 3, 4, 5]},
    {"chat_id": 3, "parent_chat_id": 1, "turn": 2, "timestamp": 13.0, "input_length": 60,
     "output_length": 5, "hash_ids": [1, 2, 9, 9]},
    {"chat_id": 4, "parent_chat_id": 2, "turn": 3, "timestamp": 20.0, "input_length": 99,
     "output_length": 5, "hash_ids": [1, 2, 3, 4, 5, 6, 7]},
    {"chat_id": 5, "parent_chat_id": 77, "turn": 4, "timestamp": 11.0, "input_length": 10,
     "output_length": 1, "hash_ids": [8]},
]


def test_bailian_parent_links_give_chains_and_trees(tmp_path):
    path = write_jsonl(tmp_path / "trace.jsonl", BAILIAN)
    progs = load("bailian", path)
    assert [p.id for p in progs] == ["bailian-1", "bailian-5"]
    tree = progs[0]
    assert tree.kind == "multi" and len(tree.calls) == 4 and tree.width() == 2 and tree.depth() == 3
    by_parent = {c.id: c for c in tree.calls}
    assert by_parent["c1"].shared_prompt_tokens == 48 and by_parent["c1"].tool_delay == 2.5
    assert by_parent["c2"].shared_prompt_tokens == 32  # two shared 16-token blocks
    assert progs[1].arrival == 1.0 and progs[1].kind == "single"
    ms = load("bailian", path, time_unit=1000.0, limit=1)
    assert len(ms) == 1 and ms[0].calls[1].tool_delay == 2500.0


def test_bailian_malformed_input_raises_trace_error(tmp_path):
    dup = write_jsonl(tmp_path / "dup.jsonl", [BAILIAN[0], BAILIAN[0]])
    with pytest.raises(TraceError, match="duplicate chat_id"):
        load("bailian", dup)
    missing = write_jsonl(tmp_path / "m.jsonl", [{"chat_id": 1, "timestamp": 0}])
    with pytest.raises(TraceError, match="missing field"):
        load("bailian", missing)


def test_load_dispatch_and_programs_kind(tmp_path):
    with pytest.raises(TraceError, match="unknown loader kind"):
        load("csv", tmp_path / "x")
    path = write_jsonl(tmp_path / "trace.jsonl", BAILIAN)
    out = tmp_path / "w.jsonl"
    save_programs(load("bailian", path), out)
    assert load("programs", out) == load("bailian", path)
    assert len(load("programs", out, limit=1)) == 1
