"""Outlier ejection of engines, after Envoy's outlier detection and circuit breakers.

An engine whose ``/health`` answers 200 may still hang every completion, so health
probes alone cannot admit an engine: only a real call that succeeds can. Each engine
moves between three states, driven by the outcome of the calls sent to it:

* ``ADMITTED``: takes calls, up to ``max_inflight`` at once (Envoy's ``max_requests``
  circuit breaker; an engine at its limit is skipped, and when every engine is,
  the call is answered 503 at once rather than queued without bound).
* ``EJECTED``: after ``eject_after`` consecutive *gateway failures* (connect refused or
  timed out, read timeout, dropped connection, an engine answer of 502/503/504), or
  as many consecutive failed ``/health`` probes. Call failures never eject the last
  admitted engine (a burst makes every engine time out at once); failed probes can.
  It takes no call until its ejection ends. The ejection lasts ``base * 2**level``
  seconds capped at ``max`` (Envoy grows it linearly; doubling reaches the cap in a
  few steps with a small base), where ``level`` counts earlier ejections and decays
  by one for each ``max`` seconds the engine has served since it was last
  re-admitted, so a flapping engine stays out longer and a recovered one is forgiven.
* ``PROBING`` (half-open): the ejection is over; the engine takes exactly one *trial*
  call at a time. The trial's success re-admits it; its failure ejects it again, for
  longer. A passing ``/health`` never changes the state; failing ones eject.

An engine answer of 500 or any 4xx counts as a success here: vLLM answers those for
one bad request (a prompt it cannot serve), which says nothing about the engine,
and counting them would let one client's retried bad request eject a healthy engine.
A call that ends with no verdict (the client went away) only frees its trial slot.
Each call carries a *ticket* from :meth:`OutlierDetector.begin`: the engine's ejection
count when it was sent, and whether it is the trial. The outcome of a call sent
before the latest ejection is stale and changes nothing, so the timeouts of the other
calls a hung engine was holding do not extend its ejection or end its trial.

The detector is pure: every method takes ``now`` (a monotonic clock reading), so
tests drive it with explicit times.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from autellix.config import ConfigError


class EngineHealth(enum.Enum):
    ADMITTED = "admitted"
    PROBING = "probing"
    EJECTED = "ejected"


@dataclass(frozen=True)
class EjectionPolicy:
    eject_after: int = 3
    base: float = 1.0
    max: float = 60.0
    max_inflight: int = 1024

    def __post_init__(self) -> None:
        if not (isinstance(self.eject_after, int) and self.eject_after >= 1):
            raise ConfigError(f"eject_after must be an integer >= 1, got {self.eject_after!r}")
        if not (self.base > 0 and self.max >= self.base):
            raise ConfigError(f"ejection times need 0 < base <= max, got base={self.base!r} "
                              f"max={self.max!r}")
        if not (isinstance(self.max_inflight, int) and self.max_inflight >= 1):
            raise ConfigError(f"max_inflight must be an integer >= 1, got {self.max_inflight!r}")


class OutlierDetector:
    """Ejection state of one engine. ``inflight`` is kept by the caller."""

    __slots__ = ("policy", "state", "failures", "level", "until", "readmitted", "trial",
                 "ejections", "reason", "probe_failures")

    def __init__(self, policy: EjectionPolicy):
        self.policy = policy
        self.state = EngineHealth.ADMITTED
        self.failures = 0         # consecutive gateway failures
        self.level = 0            # earlier ejections, decayed
        self.until = 0.0          # end of the current ejection
        self.readmitted = 0.0     # when the engine was last admitted
        self.trial = False        # a trial call is in flight (PROBING only)
        self.ejections = 0        # total, for /metrics
        self.reason = ""
        self.probe_failures = 0   # consecutive failed /health probes

    def state_at(self, now: float) -> EngineHealth:
        """The state as of ``now`` (an ejection whose time is up reads as probation)."""
        if self.state is EngineHealth.EJECTED and now >= self.until:
            return EngineHealth.PROBING
        return self.state

    # ---- routing -----------------------------------------------------------------------
    def available(self, now: float, inflight: int) -> bool:
        """May a new call go to this engine now? Ends an ejection whose time is up."""
        if self.state is EngineHealth.ADMITTED:
            return inflight < self.policy.max_inflight
        if self.state is EngineHealth.EJECTED:
            if now < self.until:
                return False
            self.state = EngineHealth.PROBING
        return not self.trial

    def begin(self, now: float) -> tuple[int, bool]:
        """A call was sent here; returns its ticket ``(epoch, is_trial)``."""
        if self.state is EngineHealth.PROBING and not self.trial:
            self.trial = True
            return (self.ejections, True)
        return (self.ejections, False)

    # ---- outcomes ----------------------------------------------------------------------
    def success(self, now: float, ticket: tuple[int, bool]) -> bool:
        """The engine answered. Returns True when this re-admitted it."""
        epoch, trial = ticket
        if epoch != self.ejections:
            return False  # sent before the latest ejection
        self.failures = 0
        if trial:
            self.trial = False
            self.state = EngineHealth.ADMITTED
            self.readmitted = now
            return True
        return False

    def failure(self, now: float, reason: str, ticket: tuple[int, bool],
                may_eject: bool = True) -> bool:
        """A gateway failure. Returns True when this ejected the engine.

        ``may_eject=False`` (the caller's rule: this is the last admitted engine)
        counts the failure but keeps the engine admitted, as Envoy's
        ``max_ejection_percent`` does: under a burst every engine times out at once,
        and ejecting them all would turn overload into a full outage.
        """
        epoch, trial = ticket
        if epoch != self.ejections or self.state is EngineHealth.EJECTED:
            return False  # sent before the latest ejection
        self.reason = reason
        self.failures += 1
        if trial or (self.failures >= self.policy.eject_after and may_eject):
            self._eject(now)
            return True
        return False

    def released(self, ticket: tuple[int, bool]) -> None:
        """The call ended without a verdict (client disconnect): free the trial slot."""
        if ticket[1] and ticket[0] == self.ejections:
            self.trial = False

    def health(self, ok: bool, now: float, reason: str = "") -> bool:
        """A ``/health`` probe's result. Returns True when it ejected the engine.

        ``eject_after`` consecutive failed probes eject (Envoy's active health
        checks have the same ``unhealthy_threshold``): one probe that times out in a
        burst says little. A passing probe never re-admits.
        """
        if ok:
            self.probe_failures = 0
            return False
        self.probe_failures += 1
        if self.state is EngineHealth.EJECTED or self.probe_failures < self.policy.eject_after:
            return False
        self.reason = reason
        self._eject(now)
        return True

    def _eject(self, now: float) -> None:
        p = self.policy
        if self.state is EngineHealth.ADMITTED and self.ejections:
            self.level = max(0, self.level - int((now - self.readmitted) // p.max))
        self.until = now + min(p.max, p.base * 2.0 ** self.level)
        self.level += 1
        self.ejections += 1
        self.failures = 0
        self.trial = False
        self.state = EngineHealth.EJECTED
