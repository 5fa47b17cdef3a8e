"""The vLLM adapter's config and metadata parsing: pure Python, runs without vLLM."""

from __future__ import annotations

import importlib
import math
import sys
from itertools import pairwise

import pytest

from autellix.config import ConfigError
from autellix.policies import REAL_ENGINE_POLICIES
from autellix.vllm.engine_config import AutellixEngineConfig
from autellix.vllm.metadata import parse_call_meta


def test_package_does_not_import_vllm_eagerly():
    for mod in ("autellix.vllm", "autellix.vllm.engine_config", "autellix.vllm.metadata",
                "autellix.vllm.tiny_model", "autellix.vllm.launch"):
        importlib.import_module(mod)
    if "vllm" in sys.modules:
        pytest.skip("vllm was already imported by another test in this session")
    assert "vllm" not in sys.modules


def test_defaults_and_round_trip():
    cfg = AutellixEngineConfig()
    assert cfg.policy == "plas" and cfg.reorders and cfg.schedule_interval == 1
    again = AutellixEngineConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert AutellixEngineConfig.from_additional_config({}) == cfg
    assert AutellixEngineConfig.from_additional_config(
        {"autellix": {"policy": "atlas", "boundaries": [1, 2]}}).queue_config().k == 3
    assert not AutellixEngineConfig(policy="fcfs").reorders


@pytest.mark.parametrize("policy", REAL_ENGINE_POLICIES)
def test_every_real_engine_policy_is_accepted(policy):
    assert AutellixEngineConfig(policy=policy).policy == policy


@pytest.mark.parametrize("bad, match", [
    ({"policy": "srpt"}, "simulation only"),
    ({"policy": "nope"}, "unknown policy"),
    ({"polcy": "plas"}, "unknown autellix setting"),
    ({"boundaries": [1, 1]}, "increase strictly"),
    ({"boundaries": "1,2"}, "list of numbers"),
    ({"boundaries": [1, 2], "quanta": [1, 2]}, "one quantum per queue"),
    ({"beta": 0}, "beta"),
    ({"beta": float("nan")}, "beta"),
    ({"starvation_floor": -1}, "starvation_floor"),
    ({"schedule_interval": 0}, "schedule_interval"),
    ({"schedule_interval": 1.5}, "schedule_interval"),
    ({"preempt": "yes"}, "preempt"),
    ({"table_max_entries": 0}, "table_max_entries"),
])
def test_invalid_settings_raise_clear_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        AutellixEngineConfig.from_dict(bad)


def test_additional_config_must_be_an_object():
    with pytest.raises(ConfigError, match="JSON object"):
        AutellixEngineConfig.from_additional_config({"autellix": "plas"})


def test_metadata_parsing(caplog):
    m = parse_call_meta("r1", {"program_id": "p", "thread_id": 3, "program_service": 2})
    assert (m.program_id, m.thread_id, m.program_service, m.source) == ("p", "3", 2.0, "xargs")
    assert parse_call_meta("r2", None, "sess").program_id == "sess"
    assert parse_call_meta("r3", None).program_id == "req:r3"
    assert parse_call_meta("r4", {"program_service": 4.0}).program_service is None  # no program
    assert parse_call_meta("r5", "junk").program_id == "req:r5"
    for bad in (float("inf"), math.nan, -0.5, "3", True, [1]):
        meta = parse_call_meta("r6", {"program_id": "p", "program_service": bad})
        assert meta.program_service is None
    assert len(caplog.records) >= 7


def test_tiny_model_is_written_once(tmp_path):
    pytest.importorskip("tokenizers")
    import json

    from autellix.vllm.tiny_model import ensure_tiny_model

    d = ensure_tiny_model(tmp_path / "tiny")
    cfg = json.loads((d / "config.json").read_text())
    tok = json.loads((d / "tokenizer.json").read_text())
    assert cfg["head_dim"] == 32 and cfg["vocab_size"] == len(tok["model"]["vocab"]) + len(
        [t for t in tok["added_tokens"] if t["content"] not in tok["model"]["vocab"]])
    mtime = (d / "config.json").stat().st_mtime_ns
    assert ensure_tiny_model(tmp_path / "tiny") == d
    assert (d / "config.json").stat().st_mtime_ns == mtime  # idempotent
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError):
        ensure_tiny_model(tmp_path / "mine")


def test_engine_command_lines():
    import json

    from autellix.vllm.launch import build_command

    kw = dict(port=18599, model="/m", max_num_seqs=2, max_model_len=512, kv_cache_bytes=1 << 27,
              served_model_name="tiny", queue={"beta": 4.0}, vllm_policy=None)
    cmd = build_command(policy="atlas", **kw)
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"] and "serve" not in cmd
    opt = {a: b for a, b in pairwise(cmd) if a.startswith("--")}
    assert opt["--scheduler-cls"] == "autellix.vllm.scheduler.AutellixScheduler"
    assert opt["--scheduling-policy"] == "priority" and opt["--host"] == "127.0.0.1"
    assert json.loads(opt["--additional-config"])["autellix"]["policy"] == "atlas"
    assert json.loads(opt["--additional-config"])["autellix"]["beta"] == 4.0
    assert "--enforce-eager" in cmd and opt["--kv-cache-memory-bytes"] == str(1 << 27)
    stock = build_command(policy="vllm-priority", **{**kw, "queue": None})
    assert "--scheduler-cls" not in stock and "priority" in stock
    with pytest.raises(ValueError, match="simulation only"):
        build_command(policy="srpt", **kw)
    with pytest.raises(ValueError, match="need an autellix policy"):
        build_command(policy="vllm-fcfs", **kw)
    with pytest.raises(ConfigError, match="beta"):
        build_command(policy="plas", **{**kw, "queue": {"beta": -1}})


def test_serve_command_errors_are_one_line():
    typer = pytest.importorskip("typer")
    from typer.testing import CliRunner

    from autellix.cli.serve_cmd import register

    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop():  # a second command keeps "serve" a sub-command
        pass

    for args, match in ((["serve", "--policy", "srpt"], "simulation only"),
                        (["serve", "--boundaries", "2,1", "--no-gateway"], "increase strictly"),
                        (["serve", "--balancer", "nope"], "balancer")):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 1, r.output
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], r.output
