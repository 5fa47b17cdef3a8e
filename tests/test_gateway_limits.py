"""Safe defaults: API keys, body and header limits, loopback bind, bounded table memory."""

from __future__ import annotations

import hmac
import os

import httpx
import pytest
from test_gateway_helpers import FakeEngine, ManualClock, closed_port, start_gateway
from typer.testing import CliRunner

from autellix.gateway import GatewayConfig, GatewayConfigError
from autellix.gateway import guard as guard_mod
from autellix.gateway.parsing import Identity
from autellix.gateway.state import GatewayState

pytestmark = pytest.mark.timeout(120)
BODY = {"model": "tiny", "prompt": "hi", "max_tokens": 1}


@pytest.fixture(scope="module")
def engine():
    e = FakeEngine("e0").start()
    yield e
    e.stop()


def test_api_key_is_required_on_v1_but_not_on_health_or_metrics(engine):
    gw = start_gateway([engine.url], api_keys=("k-one", "k-two"), clock=ManualClock())
    try:
        with httpx.Client(base_url=gw.url, timeout=10) as c:
            for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": "k-one"},
                            {"authorization": "Basic k-one"}):
                r = c.post("/v1/completions", json=BODY, headers=headers)
                assert r.status_code == 401, headers
                assert r.json()["error"]["code"] == "invalid_api_key"
                assert r.headers["www-authenticate"] == "Bearer"
            assert c.get("/v1/models").status_code == 401
            for key in ("k-one", "k-two"):
                r = c.post("/v1/completions", json=BODY, headers={"authorization": f"Bearer {key}"})
                assert r.status_code == 200
            assert c.get("/health").status_code == 200 and c.get("/metrics").status_code == 200
    finally:
        gw.stop()


def test_keys_are_compared_in_constant_time_against_every_key(monkeypatch):
    seen, real = [], hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(guard_mod.hmac, "compare_digest", spy)
    keys = (b"first", b"second", b"third")
    assert guard_mod.key_matches(b"first", keys)  # a match on the first key ...
    assert [b for _, b in seen] == list(keys)     # ... still compares all of them
    assert not guard_mod.key_matches(b"firs", keys)


def test_keys_never_leave_in_the_written_config():
    cfg = GatewayConfig(engine_urls=("http://127.0.0.1:1",), api_keys="s3cret")
    assert cfg.api_keys == ("s3cret",) and "s3cret" not in str(cfg.to_dict())
    with pytest.raises(GatewayConfigError, match="API key"):
        GatewayConfig(engine_urls=("http://127.0.0.1:1",), api_keys=("has space",))


def test_oversized_bodies_get_413_and_oversized_headers_431(engine):
    gw = start_gateway([engine.url], max_body_bytes=2000, max_header_bytes=4000,
                       clock=ManualClock())
    sent = len(engine.bodies)
    try:
        with httpx.Client(base_url=gw.url, timeout=10) as c:
            r = c.post("/v1/completions", json={**BODY, "prompt": "x" * 3000})
            assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

            def chunked():  # no Content-Length: counted as it arrives
                yield b'{"model": "tiny", "prompt": "'
                for _ in range(10):
                    yield b"y" * 500
                yield b'"}'

            r = c.post("/v1/completions", content=chunked(),
                       headers={"content-type": "application/json"})
            assert r.status_code == 413
        with httpx.Client(base_url=gw.url, timeout=10) as c:
            r = c.post("/v1/completions", json=BODY, headers={"x-big": "z" * 5000})
            assert r.status_code == 431 and r.json()["error"]["code"] == "headers_too_large"
            r = c.post("/v1/completions", json={**BODY, "prompt": "x" * 1500})
            assert r.status_code == 200  # under both limits
        assert len(engine.bodies) == sent + 1  # nothing oversized reached the engine
    finally:
        gw.stop()


def test_cli_binds_loopback_unless_told_and_reads_the_key_from_the_environment():
    from autellix.cli.app import app

    cmd = next(c for c in app.registered_commands if c.name == "gateway")
    import inspect
    params = inspect.signature(cmd.callback).parameters
    assert params["host"].default.default == "127.0.0.1"
    assert params["api_key"].default.envvar == "AUTELLIX_API_KEY"
    r = CliRunner().invoke(app, ["gateway", "-e", "ftp://x"], env={"AUTELLIX_API_KEY": "k"})
    assert r.exit_code == 1 and "http://" in r.output


def test_a_million_one_call_programs_leave_the_table_and_memory_bounded():
    """1,000,000 programs through the gateway's own bookkeeping (no HTTP): half are
    one-call programs, half name a session that is never ended, a third send long
    prompts (balancer pins). The table and pins stay at ``max_entries`` and the
    resident memory does not grow after the first 200,000."""
    cfg = GatewayConfig(engine_urls=(f"http://127.0.0.1:{closed_port()}",
                                     f"http://127.0.0.1:{closed_port() + 1}"), max_entries=10_000)
    st = GatewayState(cfg, clock=ManualClock())
    page = os.sysconf("SC_PAGE_SIZE")

    def rss_mib() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page / 2**20

    largest = 0
    for i in range(1_000_000):
        cid = f"{i:016x}"
        ident = Identity(f"call-{cid}", cid, True) if i % 2 else Identity(f"s-{i}", cid, False)
        eng = st.choose(ident.program_id, 3000 if i % 3 == 0 else 10)
        _, ticket = st.call_started(ident, cid, eng)
        st.engine_ok(eng, ticket)
        st.call_finished(ident, cid, eng, endpoint="chat", status="ok", service=0.01, wait=0.0,
                         e2e=0.01)
        if i % 1000 == 0:
            largest = max(largest, len(st.table))
        if i == 200_000:
            base = rss_mib()
    assert largest <= 10_000 and len(st.table) <= 10_000
    assert len(st.balancer.pins) <= 10_000
    assert all(e.inflight == 0 for e in st.engines)
    assert rss_mib() - base < 8.0  # MiB added over the last 800,000 programs
