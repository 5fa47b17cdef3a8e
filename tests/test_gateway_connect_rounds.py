"""The gateway's connect retries: rounds over every engine while connects time out.

Driven through ``forward._post`` with a scripted session, so that a connect timeout
(which on a real socket needs a full accept queue and a timer) is exact and instant.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from autellix.gateway import forward
from autellix.gateway.config import GatewayConfig
from autellix.gateway.parsing import GatewayError, Identity
from autellix.gateway.state import GatewayState

URLS = ("http://127.0.0.1:1", "http://127.0.0.1:2")


class ScriptedSession:
    """``post`` raises the scripted exceptions in turn, then answers ``"answer"``."""

    def __init__(self, script):
        self.script, self.urls = list(script), []

    async def post(self, url, data, headers):
        self.urls.append(str(url))
        if self.script:
            raise self.script.pop(0)
        return "answer"


def refused() -> aiohttp.ClientConnectorError:
    return aiohttp.ClientConnectorError(None, ConnectionRefusedError(111, "refused"))


def post_with(monkeypatch, script):
    monkeypatch.setattr(forward, "CONNECT_BACKOFF", 0.0)
    state = GatewayState(GatewayConfig(URLS, eject_after=100))
    state.session = ScriptedSession(script)
    ident = Identity("prog", "t", one_call=True)
    call = forward._Call(state, "chat", ident, "c1", state.choose("prog", 10))
    _, call.ticket = state.call_started(ident, "c1", call.engine)

    async def go():
        return await forward._post(state, call, "/v1/chat/completions", b"{}", {}, 10)
    return state, asyncio.run(go())


def test_connects_that_time_out_on_every_engine_get_another_round(monkeypatch):
    timeouts = [aiohttp.ConnectionTimeoutError() for _ in range(4)]  # two full rounds
    state, answer = post_with(monkeypatch, timeouts)
    assert answer == "answer" and len(state.session.urls) == 5
    assert sum(e.inflight for e in state.engines) == 1  # the call is on one engine only


def test_connects_refused_by_every_engine_end_with_the_503_at_once(monkeypatch):
    with pytest.raises(GatewayError) as err:
        post_with(monkeypatch, [refused(), refused(), refused()])
    assert err.value.status == 503 and "connect failed on every engine" in str(err.value.body())


def test_connect_rounds_are_bounded(monkeypatch):
    timeouts = [aiohttp.ConnectionTimeoutError() for _ in range(2 * forward.CONNECT_ROUNDS)]
    with pytest.raises(GatewayError) as err:
        post_with(monkeypatch, timeouts)
    assert err.value.status == 503
