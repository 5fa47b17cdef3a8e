"""One error base: what bad input raises is an AutellixError, shown by the CLI as one
line; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import pytest
from test_gateway_helpers import closed_port
from typer.testing import CliRunner

import autellix
from autellix.balancer import NoEngineAvailable, make_balancer
from autellix.cli.app import app
from autellix.config import ConfigError
from autellix.errors import AutellixError, EngineError
from autellix.gateway.config import GatewayConfigError
from autellix.gateway.parsing import GatewayError
from autellix.policies import get_policy
from autellix.program import TraceError
from autellix.replay import endpoint_info
from autellix.workloads import loaders, registry
from autellix.workloads.common import check_non_negative, check_positive

runner = CliRunner()


def one_line_error(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.mark.parametrize("cls,builtin", [
    (ConfigError, ValueError), (TraceError, ValueError), (GatewayConfigError, ValueError),
    (NoEngineAvailable, RuntimeError), (EngineError, RuntimeError), (GatewayError, Exception),
])
def test_every_user_error_class_is_an_autellix_error_and_keeps_its_builtin_base(cls, builtin):
    assert issubclass(cls, AutellixError) and issubclass(cls, builtin)


def test_the_base_is_exported_from_the_package():
    assert autellix.AutellixError is AutellixError and autellix.EngineError is EngineError


def test_input_validation_raises_autellix_errors_with_their_messages(tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 10, "output_length": 2, "hash_ids": [1]}\n')
    cases = [
        (lambda: check_positive(prompt_mean=0), "prompt_mean must be > 0"),
        (lambda: check_non_negative(delay=-1), "delay must be >= 0"),
        (lambda: registry.generate("nope", 2), "unknown workload"),
        (lambda: registry.generate("react", 2, warp=1), "bad parameter"),
        (lambda: get_policy("magic"), "unknown policy"),
        (lambda: make_balancer("nope", 1), "unknown balancer"),
        (lambda: loaders.load("mooncake", trace, colour=1), "bad option"),
        (lambda: loaders.load("mooncake", trace, block_size="big"), "block_size must be int"),
        (lambda: loaders.load("mooncake", trace, limit=0), "limit must be >= 1"),
        (lambda: loaders.load("csv", trace), "unknown loader kind"),
    ]
    for raise_it, message in cases:
        with pytest.raises(AutellixError, match=message):
            raise_it()


def test_a_loader_option_of_the_right_type_is_accepted(tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 10, "output_length": 2, "hash_ids": [1]}\n')
    assert len(loaders.load("mooncake", trace, block_size=16, time_unit=1)) == 1


def test_an_unreachable_endpoint_is_an_engine_error_naming_the_url():
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(EngineError, match=f"cannot read {url}/v1/models: ConnectError"):
        endpoint_info(url + "/v1", timeout=2)


def test_a_cli_command_given_bad_input_exits_non_zero_with_one_line(tmp_path):
    r = runner.invoke(app, ["workloads", "generate", "react", "--n", "2", "-p", "prompt_mean=-1",
                            "--out", str(tmp_path / "w.jsonl")])
    assert r.exit_code == 1
    assert "prompt_mean must be > 0" in one_line_error(r)
    r = runner.invoke(app, ["replay", "--workload", str(tmp_path / "w.jsonl"),
                            "--endpoint", f"http://127.0.0.1:{closed_port()}"])
    assert r.exit_code == 1  # the workload file was never written
    assert "not found" in one_line_error(r)


@pytest.mark.parametrize("bug", [ZeroDivisionError, ValueError, KeyError, RuntimeError,
                                 TypeError])
@pytest.mark.parametrize("target,args", [
    ("autellix.workloads.registry.generate", ["workloads", "generate", "react", "--n", "2",
                                              "--out", "{tmp}/w.jsonl"]),
    ("autellix.workloads.loaders.load", ["workloads", "export", "mooncake", "{tmp}/t.jsonl",
                                         "--out", "{tmp}/w.jsonl"]),
    ("autellix.gate.run_gate", ["gate"]),
    ("autellix.replay.endpoint_info", ["replay", "--workload", "react", "--n", "1"]),
    ("autellix.gateway.create_app", ["gateway", "--engine-url", "http://127.0.0.1:1"]),
])
def test_a_bug_inside_a_command_is_not_swallowed_into_one_line(bug, target, args, tmp_path,
                                                               monkeypatch):
    """A built-in exception that is not an AutellixError (a ValueError from a bug, say)
    propagates with its traceback instead of becoming an ``error:`` line."""
    def broken(*args, **kwargs):
        raise bug("a bug")

    monkeypatch.setattr(target, broken)
    r = runner.invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert r.exit_code != 0
    assert type(r.exception) is bug, r.output
    assert "error:" not in r.output
