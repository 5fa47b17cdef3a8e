"""Gateway configuration: one frozen dataclass, validated on construction.

Defaults and why:

* ``connect_timeout`` 2 s: engines are local or in the same cluster; a refused or
  silent connect means the engine is gone, and the call is retried elsewhere.
* ``read_timeout`` 600 s: the longest silence tolerated from an engine. A
  non-streaming call sends nothing until it finishes, so this must exceed the
  longest call (including its queueing) or healthy engines get marked down.
* ``health_interval`` 2 s: how often ``GET /health`` is probed on every engine; an
  engine marked down after a failure comes back at the next successful probe.
* ``ttl`` 600 s (peers use the same) and ``max_entries`` 100k bound the process
  table; ``expire_interval`` is how often stale programs are swept.
* ``engine_policy`` "": the scheduling policy its engines run, when the launcher
  knows it (``autellix serve`` sets it); ``GET /v1/models`` reports it with the
  balancer under ``"autellix"`` so a client (``autellix replay``) can label its runs.
* ``chars_per_token`` 4: the gateway does not tokenize. A text prompt counts as
  ``ceil(chars / 4)`` tokens (the usual English rule of thumb); a prompt given as
  token ids counts exactly. The count only feeds the balancer's 2048-token rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from autellix.balancer import BALANCERS


class GatewayConfigError(ValueError):
    """A gateway setting is invalid. The message says what to change."""


@dataclass(frozen=True)
class GatewayConfig:
    engine_urls: tuple[str, ...]
    balancer: str = "autellix"
    connect_timeout: float = 2.0
    read_timeout: float = 600.0
    health_interval: float = 2.0
    health_timeout: float = 1.0
    ttl: float = 600.0
    max_entries: int = 100_000
    expire_interval: float = 30.0
    chars_per_token: float = 4.0
    max_connections: int = 4096
    program_header: str = "x-autellix-program"
    thread_header: str = "x-autellix-thread"
    engine_policy: str = ""

    def __post_init__(self) -> None:
        urls = tuple(str(u).rstrip("/") for u in self.engine_urls)
        object.__setattr__(self, "engine_urls", urls)
        if not urls:
            raise GatewayConfigError("give at least one engine URL (e.g. http://127.0.0.1:18500)")
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise GatewayConfigError(f"engine URL must start with http:// or https://, got {u!r}")
        if len(set(urls)) != len(urls):
            raise GatewayConfigError(f"engine URLs must be distinct, got {list(urls)}")
        if self.balancer not in BALANCERS:
            raise GatewayConfigError(f"unknown balancer {self.balancer!r}; choose one of "
                                     f"{', '.join(BALANCERS)}")
        for name in ("connect_timeout", "read_timeout", "health_interval", "health_timeout",
                     "ttl", "expire_interval", "chars_per_token"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise GatewayConfigError(f"{name} must be a positive number, got {v!r}")
        if self.max_entries < 1 or self.max_connections < 1:
            raise GatewayConfigError("max_entries and max_connections must be >= 1")

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
