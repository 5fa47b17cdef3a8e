"""Balancers: pick an engine for a call. Shared by the simulator and the gateway.

* ``round_robin``: the Kubernetes default.
* ``least_used``: the engine with the fewest active calls (ties: lowest index).
* ``autellix`` (Alg. 2): a prompt of at most ``threshold`` (2048) tokens goes to
  the least-used engine (short prompts hit the cache almost anywhere); a longer one
  goes to the engine its program is pinned to, pinning it to the least-used engine
  the first time. We use ``<=`` as in the paper's pseudocode, and the boundary is
  tested. Pins are dropped when the program ends, or when their engine is marked
  unhealthy.

Load is the caller's count of in-flight calls per engine (``loads[i]``). An engine
listed in ``unavailable`` is never chosen.
"""

from __future__ import annotations

from collections import OrderedDict

from autellix.config import ConfigError
from autellix.errors import AutellixError


class NoEngineAvailable(AutellixError, RuntimeError):
    """Every engine is down, ejected or excluded: there is nowhere to send the call."""


class Balancer:
    name = "base"

    def __init__(self, n_engines: int):
        if n_engines < 1:
            raise ConfigError("need at least one engine")
        self.n = n_engines

    def choose(self, pid: str, prompt_tokens: int, loads, unavailable=()) -> int:
        raise NotImplementedError

    def program_ended(self, pid: str) -> None:
        pass

    def engine_failed(self, engine: int) -> None:
        pass

    def _candidates(self, unavailable) -> list[int]:
        c = [i for i in range(self.n) if i not in unavailable]
        if not c:
            raise NoEngineAvailable("no healthy engine is available")
        return c

    def _least_used(self, loads, unavailable) -> int:
        return min(self._candidates(unavailable), key=lambda i: (loads[i], i))


class RoundRobin(Balancer):
    name = "round_robin"

    def __init__(self, n_engines: int):
        super().__init__(n_engines)
        self._next = 0

    def choose(self, pid, prompt_tokens, loads, unavailable=()):
        cands = set(self._candidates(unavailable))
        for _ in range(self.n):
            i = self._next
            self._next = (self._next + 1) % self.n
            if i in cands:
                return i
        raise NoEngineAvailable("no healthy engine is available")


class LeastUsed(Balancer):
    name = "least_used"

    def choose(self, pid, prompt_tokens, loads, unavailable=()):
        return self._least_used(loads, unavailable)


class AutellixBalancer(Balancer):
    name = "autellix"

    def __init__(self, n_engines: int, threshold: int = 2048, max_pins: int = 1_000_000):
        super().__init__(n_engines)
        self.threshold = threshold
        self.max_pins = max_pins
        self.pins: OrderedDict[str, int] = OrderedDict()

    def choose(self, pid, prompt_tokens, loads, unavailable=()):
        if prompt_tokens <= self.threshold:
            return self._least_used(loads, unavailable)
        e = self.pins.get(pid)
        if e is not None and e not in unavailable:
            self.pins.move_to_end(pid)
            return e
        e = self._least_used(loads, unavailable)
        self.pins[pid] = e
        self.pins.move_to_end(pid)
        while len(self.pins) > self.max_pins:
            self.pins.popitem(last=False)
        return e

    def program_ended(self, pid: str) -> None:
        self.pins.pop(pid, None)

    def engine_failed(self, engine: int) -> None:
        for pid in [p for p, e in self.pins.items() if e == engine]:
            del self.pins[pid]


BALANCERS = {"round_robin": RoundRobin, "least_used": LeastUsed, "autellix": AutellixBalancer}


def make_balancer(name: str, n_engines: int) -> Balancer:
    try:
        cls = BALANCERS[name]
    except KeyError:
        raise ConfigError(f"unknown balancer {name!r}; "
                          f"choose one of {', '.join(BALANCERS)}") from None
    return cls(n_engines)
