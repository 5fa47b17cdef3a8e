"""Drive controlled batches through an engine so its step log covers the cost model.

``autellix profile`` sends, through the OpenAI completions API:

* **prefill sweeps**: one request at a time per prompt length (max_tokens 1), so a
  step holds one chunk of known size and context;
* **decode sweeps**: ``b`` concurrent requests per batch size and context length,
  each decoding ``decode_tokens`` tokens (``ignore_eos``), so steps hold ``b``
  decodes over known contexts;

each ``repeats`` times. Every prompt is fresh random single-token words, so no
prefix-cache hit shortens a prefill. Timing comes from the plug-in's step log, never
from the client: this module only makes the engine busy in the right shapes.
Standard library, httpx and numpy; no vLLM.
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass

import httpx

from autellix.config import ConfigError
from autellix.errors import EngineError
from autellix.replay_fit import WORDS


@dataclass(frozen=True)
class ProfilePlan:
    prefill: tuple[int, ...] = (32, 128, 512, 1024)
    batches: tuple[int, ...] = (1, 2, 4, 8)
    contexts: tuple[int, ...] = (64, 512)
    decode_tokens: int = 24
    repeats: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("prefill", "batches", "contexts"):
            vals = getattr(self, name)
            if not vals or any(int(v) < 1 for v in vals):
                raise ConfigError(f"--{name} needs positive integers")
        if self.decode_tokens < 2 or self.repeats < 1:
            raise ConfigError("--decode-tokens must be >= 2 and --repeats >= 1")

    def longest(self) -> int:
        """The longest request (prompt + output) the plan sends."""
        return max(max(self.prefill) + 1, max(self.contexts) + self.decode_tokens)

    def requests(self) -> int:
        return self.repeats * (len(self.prefill) + len(self.contexts) * sum(self.batches))


def _prompt(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


async def _complete(http: httpx.AsyncClient, url: str, model: str, prompt: str,
                    tokens: int) -> None:
    body = {"model": model, "prompt": prompt, "max_tokens": tokens, "min_tokens": tokens,
            "ignore_eos": True, "temperature": 0.0}
    try:
        r = await http.post(f"{url}/v1/completions", json=body)
    except httpx.HTTPError as e:
        raise EngineError(f"{url}/v1/completions: {type(e).__name__}: {e}") from e
    if r.status_code != 200:
        raise EngineError(f"{url}/v1/completions answered {r.status_code}: {r.text[:200]}")


async def drive(url: str, model: str, plan: ProfilePlan, progress=None) -> int:
    """Send the plan's requests to ``url``; returns how many were sent."""
    rng = random.Random(plan.seed)
    sent = 0
    async with httpx.AsyncClient(timeout=600, trust_env=False) as http:
        for _ in range(plan.repeats):
            for p in plan.prefill:
                await _complete(http, url, model, _prompt(rng, p), 1)
                sent += 1
            for c in plan.contexts:
                for b in plan.batches:
                    await asyncio.gather(*(_complete(http, url, model, _prompt(rng, c),
                                                     plan.decode_tokens) for _ in range(b)))
                    sent += b
                    if progress is not None:
                        progress(sent, plan.requests())
    return sent


def kv_capacity_tokens(url: str, timeout: float = 10.0) -> int | None:
    """The engine's KV cache size in tokens, from vLLM's ``cache_config_info`` metric
    (``num_gpu_blocks`` x ``block_size``), or None if the endpoint does not say."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=timeout, trust_env=False).text
    except httpx.HTTPError:
        return None
    m = re.search(r'^vllm:cache_config_info\{([^}]*)\}', text, re.M)
    if not m:
        return None
    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
    try:
        return int(labels["num_gpu_blocks"]) * int(labels["block_size"])
    except (KeyError, ValueError):
        return None
