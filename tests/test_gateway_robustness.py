"""Gateway robustness: engine errors pass through, expiry runs by itself, load returns to 0."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from test_gateway_helpers import FakeEngine, start_gateway

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def one():
    engine = FakeEngine("e0", token_delay=0.002).start()
    yield engine
    engine.stop()


def test_engine_errors_pass_through_without_marking_it_down(one):
    gw = start_gateway([one.url])
    try:
        with httpx.Client(base_url=gw.url, timeout=10) as c:
            for prompt, status in (("reject", 400), ("explode", 500)):
                r = c.post("/v1/completions", json={"model": "tiny", "prompt": prompt})
                assert r.status_code == status and "error" in r.json()
                stream = c.post("/v1/completions", json={"model": "tiny", "prompt": prompt,
                                                         "stream": True})
                assert stream.status_code == status
            assert c.get("/health").json()["unhealthy"] == []
            m = c.get("/metrics").text
            assert 'status="upstream_error"} 4.0' in m
            r = c.post("/v1/completions", json={"model": "tiny", "prompt": "ok"})
            assert r.status_code == 200
    finally:
        gw.stop()


def test_stale_programs_expire_in_the_background(one):
    gw = start_gateway([one.url], ttl=0.3, expire_interval=0.1)
    try:
        with httpx.Client(base_url=gw.url, timeout=10) as c:
            pid = c.post("/v1/programs").json()["id"]
            assert c.get(f"/v1/programs/{pid}").status_code == 200
            deadline = time.monotonic() + 5
            while c.get(f"/v1/programs/{pid}").status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert c.get(f"/v1/programs/{pid}").status_code == 404
    finally:
        gw.stop()


def test_many_concurrent_calls_all_complete_and_counts_return_to_zero():
    engines = [FakeEngine(name, token_delay=0.005).start() for name in ("e0", "e1")]
    gw = start_gateway([e.url for e in engines])

    async def burst():
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=gw.url, timeout=60, limits=limits) as c:
            async def one_call(i):
                body = {"model": "tiny", "prompt": "x" * (i % 7 + 1), "max_tokens": 5,
                        "stream": i % 2 == 0}
                r = await c.post("/v1/completions", json=body,
                                 headers={"X-Autellix-Program": f"p{i % 10}"})
                return r.status_code

            async def release_when_all_held():
                while sum(e.running for e in engines) < 80:
                    await asyncio.sleep(0.005)
                for e in engines:
                    e.held = False
            calls = asyncio.gather(*(one_call(i) for i in range(80)))
            await asyncio.wait_for(release_when_all_held(), 60)
            return await calls

    for e in engines:  # all 80 calls are in flight at once before any finishes
        e.held = True
    try:
        assert set(asyncio.run(burst())) == {200}
        assert [e.finished for e in engines] == [40, 40]  # least-used split them evenly
        st = httpx.get(f"{gw.url}/metrics").text
        for e in engines:
            assert f'autellix_gateway_inflight{{engine="{e.url}"}} 0.0' in st
        info = httpx.get(f"{gw.url}/v1/programs/p3").json()
        assert info["calls"] == 8 and info["active_threads"] == 0
    finally:
        gw.stop()
        for e in engines:
            e.stop()
