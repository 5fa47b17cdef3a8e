"""Gateway configuration: one frozen dataclass, validated on construction.

Defaults and why:

* ``connect_timeout`` 2 s: engines are local or in the same cluster; a refused or
  silent connect means the engine is gone, and the call is retried elsewhere.
* ``read_timeout`` 600 s: the longest silence tolerated from an engine. A
  non-streaming call sends nothing until it finishes, so this must exceed the
  longest call (including its queueing) or healthy engines get marked down.
* ``health_interval`` 2 s: how often ``GET /health`` is probed on every engine.
  ``eject_after`` failed probes in a row eject the engine; a passing one never
  re-admits it (a hung engine still answers ``/health``): only a successful trial
  call does.
* ``eject_after`` 3, ``ejection_base`` 1 s, ``ejection_max`` 60 s: outlier ejection
  (:mod:`autellix.gateway.outlier`). Three consecutive gateway failures eject an
  engine for 1 s, doubling with each later ejection up to 60 s. Envoy uses 5
  failures and 30 s; a fleet of a few engines cannot spare one for that long, and
  a trial call after the ejection costs one call at most.
* ``max_inflight_per_engine`` 1024 (Envoy's ``max_requests`` default): calls open on
  one engine at once; past it the engine is skipped, and with every engine full the
  call gets 503 ``engines_busy`` at once.
* ``ttl`` 600 s (peers use the same) and ``max_entries`` 100k bound the process
  table; ``expire_interval`` is how often stale programs are swept.
* ``engine_policy`` "": the scheduling policy its engines run, when the launcher
  knows it (``autellix serve`` sets it); ``GET /v1/models`` reports it with the
  balancer under ``"autellix"`` so a client (``autellix replay``) can label its runs.
* ``api_keys`` none, ``max_body_bytes`` 32 MiB, ``max_header_bytes`` 64 KiB: the front
  door (:mod:`autellix.gateway.guard`); with no key the gateway is open, so it binds
  127.0.0.1 unless told otherwise. ``to_dict`` never writes the keys out.
* ``chars_per_token`` 4: the gateway does not tokenize. A text prompt counts as
  ``ceil(chars / 4)`` tokens (the usual English rule of thumb); a prompt given as
  token ids counts exactly. The count only feeds the balancer's 2048-token rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from autellix.balancer import BALANCERS
from autellix.errors import AutellixError


class GatewayConfigError(AutellixError, ValueError):
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
    eject_after: int = 3
    ejection_base: float = 1.0
    ejection_max: float = 60.0
    max_inflight_per_engine: int = 1024
    api_keys: tuple[str, ...] = ()
    max_body_bytes: int = 32 << 20
    max_header_bytes: int = 64 << 10
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
                raise GatewayConfigError("engine URL must start with http:// or https://, "
                                         f"got {u!r}")
        if len(set(urls)) != len(urls):
            raise GatewayConfigError(f"engine URLs must be distinct, got {list(urls)}")
        if self.balancer not in BALANCERS:
            raise GatewayConfigError(f"unknown balancer {self.balancer!r}; choose one of "
                                     f"{', '.join(BALANCERS)}")
        for name in ("connect_timeout", "read_timeout", "health_interval", "health_timeout",
                     "ttl", "expire_interval", "chars_per_token", "ejection_base",
                     "ejection_max"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise GatewayConfigError(f"{name} must be a positive number, got {v!r}")
        keys = (self.api_keys,) if isinstance(self.api_keys, str) else tuple(self.api_keys)
        object.__setattr__(self, "api_keys", keys)
        for k in keys:
            if not isinstance(k, str) or not k.strip() or not k.isprintable() or " " in k:
                raise GatewayConfigError("an API key must be a non-empty printable string "
                                         "without spaces")
        for name in ("max_entries", "max_connections", "eject_after", "max_inflight_per_engine",
                     "max_body_bytes", "max_header_bytes"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise GatewayConfigError(f"{name} must be an integer >= 1, got {v!r}")
        if self.ejection_max < self.ejection_base:
            raise GatewayConfigError(f"ejection_max ({self.ejection_max}) must be >= "
                                     f"ejection_base ({self.ejection_base})")

    def to_dict(self) -> dict:
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
        d["api_keys"] = ["<redacted>"] * len(self.api_keys)
        return d
