"""``srpt``: clairvoyant program-level shortest remaining processing time.

Simulation only: the driver tells the queue each call's program's remaining work
(estimated engine-seconds of all its unfinished calls) when the call is issued. It
is the lower bound printed beside every result, not something a real server can do."""

from autellix.policies.base import Policy


class _SRPT(Policy):
    def sort_key(self, entry) -> float:
        return entry.remaining_work


SRPT = _SRPT(name="srpt", description="clairvoyant shortest remaining program work (sim only)",
             multilevel=False, demotes=False, starvation=None, clairvoyant=True)
