"""Checks that any autellix front (the gateway, the Ray Serve ingress) must pass against
real engines: the same program, the same routing facts, so the two fronts are held to
one standard."""

from __future__ import annotations

import re
import threading

import httpx

import autellix.client as ac


def engine_metric(url: str, name: str) -> float:
    """The sum of a Prometheus metric's samples on the vLLM server at ``url``."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$",
                                                       text, re.M))


LONG_TEXT = " ".join(["program engine thread service"] * 600)  # ~2600 tokens by chars/4


def agent_program_with_a_streamed_call(url: str) -> None:
    """Three calls through the client library (one streamed on its own thread); the
    front's process table counts them and forgets the program when it ends."""
    with ac.program(base_url=url) as p:
        c = p.client
        plan = c.chat.completions.create(model="tiny", max_tokens=8,
                                         messages=[{"role": "user", "content": "plan the task"}])
        assert plan.usage.completion_tokens >= 1
        text = ""
        for chunk in p.thread("worker").chat.completions.create(
                model="tiny", max_tokens=12, stream=True, extra_body={"ignore_eos": True},
                messages=[{"role": "user", "content": "act"},
                          {"role": "assistant", "content": plan.choices[0].message.content},
                          {"role": "user", "content": "the tool result is 42"}]):
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
        assert text
        done = c.completions.create(model="tiny", prompt="summarize: " + text, max_tokens=4)
        assert done.choices[0].text is not None
        info = httpx.get(f"{url}/v1/programs/{p.id}").json()
        assert info["calls"] == 3 and info["service"] > 0
    assert httpx.get(f"{url}/v1/programs/{p.id}").status_code == 404


def long_calls_stick_while_short_calls_spread(url: str) -> set[str]:
    """Six concurrent short calls use every engine; each program's long calls use one.
    Returns the engines the short calls used."""
    seen: list[tuple[str, str]] = []

    def run(pid: str, prompt: str, n: int, max_tokens: int = 24):
        with httpx.Client(base_url=url, timeout=120) as c:
            for _ in range(n):
                r = c.post("/v1/completions", headers={"X-Autellix-Program": pid},
                           json={"model": "tiny", "prompt": prompt, "max_tokens": max_tokens,
                                 "ignore_eos": True})
                assert r.status_code == 200, r.text
                seen.append((pid, r.headers["x-autellix-engine"]))

    def together(threads):
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    together([threading.Thread(target=run, args=(f"s{i}", "short question", 1))
              for i in range(6)])
    short = {e for _, e in seen}
    seen.clear()
    together([threading.Thread(target=run, args=(pid, LONG_TEXT, 3, 4)) for pid in ("la", "lb")])
    where = {pid: {e for p, e in seen if p == pid} for pid in ("la", "lb")}
    assert all(len(v) == 1 for v in where.values()), where  # long: one engine each
    return short
