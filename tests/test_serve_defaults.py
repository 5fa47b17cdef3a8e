"""``autellix serve``'s context default: 32k for the tiny model (it holds every built-in
workload once replay fits the longest swe turns), the model's own for any other."""

from __future__ import annotations

import json

import pytest

from autellix.vllm.launch import TINY_MAX_MODEL_LEN, build_command
from autellix.vllm.tiny_model import MAX_POSITIONS, ensure_tiny_model

KW = dict(port=18599, policy="plas", max_num_seqs=8, kv_cache_bytes=256 << 20,
          served_model_name="tiny", queue=None, vllm_policy=None)


def flag(cmd: list[str], name: str) -> str | None:
    return cmd[cmd.index(name) + 1] if name in cmd else None


def test_tiny_model_gets_a_32k_context_that_its_kv_cache_holds_for_every_seat():
    cmd = build_command(model=None, max_model_len=None, **KW)
    assert flag(cmd, "--max-model-len") == str(TINY_MAX_MODEL_LEN) == "32768"
    config = json.loads((ensure_tiny_model() / "config.json").read_text())
    per_token = (config["num_hidden_layers"] * 2 * config["num_key_value_heads"]
                 * config["head_dim"] * 2)  # K and V, bfloat16
    assert per_token == 1024
    assert KW["kv_cache_bytes"] // per_token == KW["max_num_seqs"] * TINY_MAX_MODEL_LEN
    assert config["max_position_embeddings"] == MAX_POSITIONS >= TINY_MAX_MODEL_LEN


def test_another_model_keeps_its_own_context_unless_told():
    assert flag(build_command(model="/m", max_model_len=None, **KW), "--max-model-len") is None
    assert flag(build_command(model="/m", max_model_len=4096, **KW), "--max-model-len") == "4096"
    assert flag(build_command(model=None, max_model_len=2048, **KW), "--max-model-len") == "2048"


def test_the_tiny_tokenizer_keeps_replay_words_one_token_each():
    tokenizers = pytest.importorskip("tokenizers")
    from autellix.replay_fit import TOKEN_SLACK, WORDS

    tok = tokenizers.Tokenizer.from_file(str(ensure_tiny_model() / "tokenizer.json"))
    assert all(len(tok.encode(" " + w, add_special_tokens=False).ids) == 1 for w in WORDS)
    text = " ".join(WORDS * 3)  # only the first word lacks its space and may split
    assert len(WORDS) * 3 < len(tok.encode(text).ids) <= len(WORDS) * 3 + TOKEN_SLACK // 2


def test_serve_tells_its_gateway_the_policy_and_tolerates_a_busy_engine():
    from rich.console import Console

    from autellix.cli.serve_cmd import HEALTH_TIMEOUT, _gateway_app

    app = _gateway_app(["http://127.0.0.1:18599"], "autellix", Console(), "atlas")
    config = app.state.gateway.config
    assert config.engine_policy == "atlas" and config.health_timeout == HEALTH_TIMEOUT >= 5


def test_engines_get_an_openmp_share_of_the_cores_and_one_share_for_api_servers():
    from autellix.vllm.launch import omp_threads

    assert omp_threads(1, cores=2) == 1   # this CI machine: one engine, one core left
    assert omp_threads(2, cores=2) == 1
    assert omp_threads(1, cores=16) == 8
    assert omp_threads(3, cores=16) == 4
