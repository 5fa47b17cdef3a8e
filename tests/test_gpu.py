"""GPU path: the async scheduler variant inside a real vLLM GPU engine.

Skipped cleanly on machines without CUDA (CI). On a GPU with ``autellix[gpu]``
installed it serves the tiny model with dummy weights under
``AutellixAsyncScheduler`` (vLLM's default async scheduling) and checks that two
programs' calls complete."""

import httpx
import pytest

pytestmark = [pytest.mark.gpu, pytest.mark.e2e]


def test_async_scheduler_serves_on_gpu():
    pytest.importorskip("vllm")
    from autellix.vllm.launch import launch_engines, stop_engines

    engines = launch_engines(1, policy="atlas", base_port=18590, async_scheduler=True,
                             max_num_seqs=4)
    try:
        url = engines[0].url
        for pid in ("gpu-a", "gpu-b"):
            r = httpx.post(f"{url}/v1/completions", timeout=120, json={
                "model": "tiny", "prompt": "agent step", "max_tokens": 8, "ignore_eos": True,
                "vllm_xargs": {"program_id": pid, "thread_id": "t0"}})
            assert r.status_code == 200, r.text
            assert r.json()["usage"]["completion_tokens"] == 8
    finally:
        stop_engines(engines)
