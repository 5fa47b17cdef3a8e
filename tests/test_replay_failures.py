"""Replay against an engine that enforces a context length the way vLLM does: the fit,
``--no-fit``, the failure-reason table, ``--max-failed`` and the exit code."""

from __future__ import annotations

import csv
import json

import pytest
import typer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from test_gateway_helpers import FakeEngine, ServerThread, start_gateway
from typer.testing import CliRunner

from autellix.cli import replay_cmd
from autellix.program import Call, Program, save_programs
from autellix.replay import endpoint_info, replay

pytestmark = pytest.mark.timeout(60)


class ContextEngine:
    """A fake vLLM that counts one token per word plus BOS and answers 400 past
    ``enforce`` tokens with vLLM's message. ``report`` is what ``/v1/models`` says."""

    def __init__(self, enforce: int, report: int | None):
        self.enforce, self.report, self.prompts = enforce, report, []
        app = FastAPI()

        @app.get("/v1/models")
        async def models():
            entry = {"id": "tiny", "object": "model"}
            if self.report is not None:
                entry["max_model_len"] = self.report
            return {"object": "list", "data": [entry]}

        @app.post("/v1/completions")
        async def completions(request: Request):
            body = await request.json()
            n_in, n_out = len(body["prompt"].split()) + 1, int(body["max_tokens"])
            self.prompts.append(n_in)
            if n_in + n_out > self.enforce:
                msg = (f"This model's maximum context length is {self.enforce} tokens. However, "
                       f"you requested {n_in + n_out} tokens ({n_in} in the messages, {n_out} in "
                       "the completion). Please reduce the length of the messages or completion.")
                return JSONResponse({"error": {"message": msg, "type": "BadRequestError",
                                               "code": 400}}, status_code=400)
            return StreamingResponse(self._stream(n_in, n_out), media_type="text/event-stream")

        self.server = ServerThread(app)
        self.url = self.server.url

    async def _stream(self, n_in: int, n_out: int):
        for _ in range(n_out):
            yield f"data: {json.dumps({'choices': [{'index': 0, 'text': ' tok'}]})}\n\n"
        usage = {"prompt_tokens": n_in, "completion_tokens": n_out}
        yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
        yield "data: [DONE]\n\n"

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop()


def loops(n: int, first: int, turns: int = 6, tag: str = "p") -> list[Program]:
    out = []
    for i in range(n):
        calls, shared = [], 0
        for t in range(turns):
            new = first if t == 0 else 60
            calls.append(Call(f"s{t}", (f"s{t-1}",) if t else (), shared, new, 8))
            shared += new + 8
        out.append(Program(f"{tag}{i}", tuple(calls), workload="loop"))
    return out


@pytest.fixture(scope="module")
def app():
    a = typer.Typer()
    a.callback()(lambda: None)  # keep "replay" a subcommand of a one-command app
    replay_cmd.register(a)
    return a


def run_cli(app, tmp_path, programs, endpoint, *args):
    trace = tmp_path / "w.jsonl"
    save_programs(programs, trace)
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["replay", "-w", str(trace), "--endpoint", endpoint,
                                 "--rate", "inf", "--out", str(out), *args])
    rows = list(csv.DictReader((out / "calls.csv").open())) if (out / "calls.csv").exists() else []
    return r, rows


def test_replay_reads_the_context_and_fits_every_call():
    with ContextEngine(enforce=256, report=256) as eng:
        assert endpoint_info(eng.url).max_model_len == 256
        progs, calls = replay(loops(3, 120), eng.url, rate=float("inf"), seed=0)
    assert all(p.status == "completed" for p in progs)
    assert max(eng.prompts) + 8 <= 256 and len(eng.prompts) == 18
    clipped = [c for c in calls if c.clipped_tokens > 0]
    assert clipped and all(c.prompt_tokens + 8 <= 256 for c in calls)


def test_cli_records_clipped_tokens_and_prints_the_fit_line(app, tmp_path):
    with ContextEngine(enforce=256, report=256) as eng:
        r, rows = run_cli(app, tmp_path, loops(2, 120), eng.url)
    assert r.exit_code == 0, r.output
    assert rows and all("clipped_tokens" in row for row in rows)
    n_clipped = sum(int(row["clipped_tokens"]) > 0 for row in rows)
    assert n_clipped > 0
    assert f"fit: {n_clipped} of 12 calls clipped to the endpoint's 256-token context" in r.output


def test_an_engine_context_failure_shows_in_the_reasons_and_the_exit_code(app, tmp_path):
    # the engine reports no length (so nothing is fitted) but rejects long prompts:
    # the original failure, now visible
    with ContextEngine(enforce=256, report=None) as eng:
        r, rows = run_cli(app, tmp_path, loops(3, 30, 3) + loops(1, 400, 3, "long"), eng.url)
    assert r.exit_code == 1, r.output
    assert "failed calls (1 of 10)" in r.output and "context length exceeded" in r.output
    assert "maximum context length is 256" in " ".join(r.output.split())  # wrapped to 80
    assert r.output.strip().splitlines()[-1].startswith(
        "error: 1 of 4 programs failed, more than --max-failed 0")
    assert "reports no context length" in r.output
    assert sum(row["status"] == "failed" for row in rows) == 1


def test_max_failed_tolerates_that_many_lost_programs(app, tmp_path):
    with ContextEngine(enforce=256, report=None) as eng:
        r, _ = run_cli(app, tmp_path, loops(3, 30, 3) + loops(1, 400, 3, "long"), eng.url,
                         "--max-failed", "1")
    assert r.exit_code == 0, r.output
    assert "context length exceeded" in r.output


def test_no_fit_fails_long_calls_naming_the_option(app, tmp_path):
    with ContextEngine(enforce=256, report=256) as eng:
        r, rows = run_cli(app, tmp_path, loops(2, 400, turns=2), eng.url, "--no-fit")
        assert eng.prompts == []  # nothing certain to fail was sent
    assert r.exit_code == 1
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("error: every call failed (2 of 2)") and "context length" in last
    assert "--no-fit is set" in r.output and "tok-lat" not in r.output
    assert {row["status"] for row in rows} == {"failed"}


def test_the_policy_comes_from_the_gateway_and_label_overrides_it(app, tmp_path):
    engine = FakeEngine("e0", token_delay=0.001).start()
    gw = start_gateway([engine.url], engine_policy="atlas")
    try:
        assert endpoint_info(gw.url).policy == "atlas"
        progs = [Program("p0", (Call("a", (), 0, 5, 2),))]
        r, _ = run_cli(app, tmp_path, progs, gw.url)
        r2, _ = run_cli(app, tmp_path, progs, gw.url, "--label", "my-run")
    finally:
        gw.stop()
        engine.stop()
    assert r.exit_code == 0 and "policy atlas" in r.output and "balancer autellix" in r.output
    assert r2.exit_code == 0 and "policy my-run" in r2.output and "atlas" not in r2.output


@pytest.mark.parametrize("error,kind", [
    ("HTTP 400: The decoder prompt (length 2211) is longer than the maximum model length of "
     "2048. Make sure that `max_model_len` is no smaller than the number of text tokens.",
     "context length exceeded"),
    ("HTTP 400: Input length (2387) exceeds model's maximum context length (2048).",
     "context length exceeded"),
    ("HTTP 400: This model's maximum context length is 2048 tokens. However, you requested "
     "2391 tokens", "context length exceeded"),
    ("timed out after 300 s", "timed out"),
    ("ConnectError: [Errno 111] Connection refused", "connection: ConnectError"),
    ("RemoteProtocolError: peer closed connection", "connection: RemoteProtocolError"),
    ("HTTP 503: no healthy engine is available", "HTTP 503"),
])
def test_failure_kinds_name_what_to_fix(error, kind):
    from autellix.replay_report import failure_kind

    assert failure_kind(error) == kind
