"""Client library tests: the real OpenAI SDK through autellix.client against the gateway."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from test_gateway_helpers import FakeEngine, start_gateway

import autellix.client as ac

pytestmark = pytest.mark.timeout(60)
MSG = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def gw():
    engine = FakeEngine("e0").start()
    gateway = start_gateway([engine.url])
    yield gateway, engine
    gateway.stop()
    engine.stop()


def program_exists(url, pid) -> bool:
    return httpx.get(f"{url}/v1/programs/{pid}").status_code == 200


def test_program_tags_every_call_and_ends(gw):
    gateway, engine = gw
    with ac.program(base_url=gateway.url) as p:
        assert program_exists(gateway.url, p.id)
        r = p.client.chat.completions.create(model="tiny", messages=MSG, max_tokens=3)
        assert r.choices[0].message.content == " tok" * 3
        chunks = list(p.client.chat.completions.create(model="tiny", messages=MSG, max_tokens=4,
                                                       stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == " tok" * 4
        p.client.completions.create(model="tiny", prompt="x", max_tokens=2)
        p.thread("worker-1").completions.create(model="tiny", prompt="y", max_tokens=1)
        assert httpx.get(f"{gateway.url}/v1/programs/{p.id}").json()["calls"] == 4
    xargs = [b["vllm_xargs"] for b in engine.bodies[-4:]]
    assert all(x["program_id"] == p.id for x in xargs)
    assert xargs[-1]["thread_id"] == "worker-1"
    assert not program_exists(gateway.url, p.id)


def test_program_ends_on_error_and_keeps_given_client_and_id(gw):
    gateway, engine = gw
    base = openai.OpenAI(base_url=gateway.url + "/v1", api_key="k", max_retries=0, timeout=7)
    with pytest.raises(ZeroDivisionError):
        with ac.program(client=base, program_id="given-id") as p:
            assert p.id == "given-id" and p.client.timeout == 7 and p.client.max_retries == 0
            p.client.completions.create(model="tiny", prompt="x", max_tokens=1)
            raise ZeroDivisionError("a failure inside the program")
    assert engine.bodies[-1]["vllm_xargs"]["program_id"] == "given-id"
    assert not program_exists(gateway.url, "given-id")


def test_bad_requests_surface_as_openai_errors(gw):
    gateway, _ = gw
    with ac.program(base_url=gateway.url + "/v1") as p:
        with pytest.raises(openai.BadRequestError) as ei:
            p.client.chat.completions.create(model="tiny", messages=[], max_tokens=1)
        assert "messages" in str(ei.value)


def test_async_program_and_decorators(gw):
    gateway, engine = gw

    async def main():
        async with ac.aprogram(base_url=gateway.url) as p:
            r = await p.client.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)
            stream = await p.thread("t").chat.completions.create(
                model="tiny", messages=MSG, max_tokens=2, stream=True)
            n = 0
            async for _ in stream:
                n += 1
            return p.id, r, n

    pid, r, n = asyncio.run(main())
    assert r.usage.completion_tokens == 2 and n == 2
    assert not program_exists(gateway.url, pid)

    @ac.program_fn(base_url=gateway.url)
    def agent(q, *, client):
        client.completions.create(model="tiny", prompt=q, max_tokens=1)
        return engine.bodies[-1]["vllm_xargs"]["program_id"]

    @ac.program_fn(base_url=gateway.url)
    async def aagent(q, *, client):
        await client.completions.create(model="tiny", prompt=q, max_tokens=1)
        return engine.bodies[-1]["vllm_xargs"]["program_id"]

    a, b = agent("x"), agent("y")
    assert a != b and a.startswith("prog-") and not program_exists(gateway.url, a)
    c = asyncio.run(aagent("z"))
    assert c.startswith("prog-") and not program_exists(gateway.url, c)


def test_unreachable_gateway_is_a_clear_error():
    with pytest.raises(httpx.ConnectError):
        with ac.program(base_url="http://127.0.0.1:18698"):
            pass
    with pytest.raises(ValueError):
        with ac.program():
            pass
