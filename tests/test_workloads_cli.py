"""The ``workloads`` sub-app through typer's CliRunner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from autellix.cli.workloads_cmd import app
from autellix.program import load_programs
from autellix.workloads.registry import generate

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_list_names_every_generator_and_loader():
    result = invoke("list")
    assert result.exit_code == 0
    for name in ("chatbot", "react", "mcts", "swe", "mixed", "sharegpt", "bailian"):
        assert name in result.output


def test_describe_a_generator_shows_stats_and_targets():
    result = invoke("describe", "chatbot", "--n", 300, "--seed", 1)
    assert result.exit_code == 0, result.output
    assert "calls / program" in result.output and "documented targets" in result.output
    as_json = json.loads(invoke("describe", "react", "--n", 50, "--json").output)
    assert as_json["programs"] == 50 and as_json["calls_per_program"]["mean"] > 0


def test_generate_writes_jsonl_that_describe_reads_back(tmp_path):
    out = tmp_path / "w.jsonl"
    result = invoke("generate", "react", "--n", 20, "--seed", 4, "--out", out,
                    "-p", "tool_delay_median=0")
    assert result.exit_code == 0, result.output
    assert "wrote 20 react programs" in result.output
    programs = load_programs(out)
    assert programs == generate("react", 20, 4, tool_delay_median=0)
    described = invoke("describe", out)
    assert described.exit_code == 0 and "react: documented targets" in described.output


def test_export_converts_a_trace(tmp_path):
    trace = tmp_path / "trace.jsonl"
    trace.write_text(json.dumps({"chat_id": 1, "parent_chat_id": -1, "timestamp": 0,
                                 "input_length": 10, "output_length": 3, "hash_ids": [1]}) + "\n")
    out = tmp_path / "out.jsonl"
    result = invoke("export", "bailian", trace, "--out", out, "-p", "block_size=16")
    assert result.exit_code == 0, result.output
    assert [p.id for p in load_programs(out)] == ["bailian-1"]


def test_errors_are_one_line_with_exit_code_1(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    cases = [
        ("describe", "nope"),
        ("describe", bad),
        ("generate", "chatbot", "--out", tmp_path / "x.jsonl", "-p", "warp=1"),
        ("generate", "chatbot", "--out", tmp_path / "x.jsonl", "-p", "novalue"),
        ("generate", "chatbot", "--n", 0, "--out", tmp_path / "x.jsonl"),
        ("export", "csv", bad, "--out", tmp_path / "y.jsonl"),
        ("export", "mooncake", bad, "--out", tmp_path / "y.jsonl"),
        ("export", "mooncake", bad, "--out", tmp_path / "y.jsonl", "-p", "colour=1"),
    ]
    for args in cases:
        result = invoke(*args)
        assert result.exit_code == 1, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.output)
