"""CLI tests for ``autellix replay`` and ``autellix gateway`` (registered on a bare Typer app)."""

from __future__ import annotations

import json

import pytest
import typer
from test_gateway_helpers import FakeEngine, start_gateway
from typer.testing import CliRunner

from autellix.cli import gateway_cmd, replay_cmd
from autellix.program import Call, Program, save_programs

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def app():
    a = typer.Typer()
    replay_cmd.register(a)
    gateway_cmd.register(a)
    return a


def test_replay_cli_writes_results_and_table(app, tmp_path):
    engine = FakeEngine("e0", token_delay=0.002).start()
    gw = start_gateway([engine.url])
    try:
        trace = tmp_path / "w.jsonl"
        save_programs([Program(f"p{i}", (Call("a", (), 0, 10, 3), Call("b", ("a",), 13, 4, 2)),
                               workload="t") for i in range(3)], trace)
        out = tmp_path / "run"
        r = CliRunner().invoke(app, ["replay", "--workload", str(trace), "--endpoint", gw.url,
                                     "--rate", "20", "--seed", "1", "--out", str(out),
                                     "--max-prompt-tokens", "100", "--label", "plas"])
    finally:
        gw.stop()
        engine.stop()
    assert r.exit_code == 0, r.output
    assert "3/3" in r.output and "plas" in r.output
    files = {p.name for p in out.iterdir()}
    assert {"config.json"} <= files and len(files) >= 3
    cfg = json.loads((out / "config.json").read_text())
    assert cfg.get("rate", cfg.get("config", {}).get("rate")) == 20


@pytest.mark.parametrize("args,needle", [
    (["replay", "--workload", "no-such-workload", "--endpoint", "http://127.0.0.1:18696"],
     "no-such-workload"),
    (["replay", "--workload", "missing.jsonl"], "not found"),
    (["gateway", "--engine-url", "ftp://x"], "http://"),
    (["gateway", "--engine-url", "http://a:1", "--balancer", "nope"], "balancer"),
])
def test_cli_errors_are_one_line_exit_1(app, args, needle):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.output


def test_replay_cli_unreachable_endpoint(app, tmp_path):
    trace = tmp_path / "w.jsonl"
    save_programs([Program("p0", (Call("a", (), 0, 5, 1),))], trace)
    r = CliRunner().invoke(app, ["replay", "-w", str(trace), "--endpoint", "http://127.0.0.1:18695",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and r.output.strip().splitlines()[-1].startswith("error:")
