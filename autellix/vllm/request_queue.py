"""vLLM's waiting queue, ordered by autellix's queue position.

vLLM 0.32 keeps waiting requests in a ``RequestQueue`` (a heap ordered by
``(priority, arrival_time)`` under ``--scheduling-policy priority``) and reads a
request's priority only when it is pushed. Re-ranking every request and re-heapifying
on each arrival, demotion or promotion cost 14-17 ms per step with 10,000 waiting
(issue 10). ``PositionQueue`` instead keeps requests in a sorted list keyed by their
position in :class:`autellix.mlq.MultiLevelQueue` (level, policy key, entry order):
an arrival, a removal or a repositioned call costs O(log n), a peek O(1), and a scan
of the first k heads O(k). Only calls whose position changed while they wait
(promotion) are repositioned; running calls are not in this queue.

A request unknown to the queue (never expected: every request is registered with
the multi-level queue before vLLM enqueues it) sorts after all known ones, FCFS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

from sortedcontainers import SortedList
from vllm.v1.core.sched.request_queue import RequestQueue


class PositionQueue(RequestQueue):
    def __init__(self, position: Callable[[str], tuple | None]):
        self._position = position
        self._keys = SortedList()
        self._by_key: dict[tuple, object] = {}
        self._key_of: dict[str, tuple] = {}

    def _key(self, request) -> tuple:
        pos = self._position(request.request_id)
        if pos is None:
            return (math.inf, 0.0, request.arrival_time, request.request_id)
        return pos

    def add_request(self, request) -> None:
        rid = request.request_id
        if rid in self._key_of:  # vLLM never adds twice; stay consistent if it does
            self.remove_request(request)
        k = self._key(request)
        self._keys.add(k)
        self._by_key[k] = request
        self._key_of[rid] = k

    def pop_request(self):
        if not self._keys:
            raise IndexError("pop from an empty queue")
        k = self._keys.pop(0)
        request = self._by_key.pop(k)
        del self._key_of[request.request_id]
        return request

    def peek_request(self):
        if not self._keys:
            raise IndexError("peek from an empty queue")
        return self._by_key[self._keys[0]]

    def prepend_request(self, request) -> None:
        """Order is by queue position, so prepending is adding."""
        self.add_request(request)

    def prepend_requests(self, requests: Iterable) -> None:
        for r in requests:
            self.add_request(r)

    def remove_request(self, request) -> None:
        k = self._key_of.pop(request.request_id)
        self._keys.remove(k)
        del self._by_key[k]

    def remove_requests(self, requests: Iterable) -> None:
        for r in requests:
            if r.request_id in self._key_of:
                self.remove_request(r)

    def reposition(self, request_id: str) -> None:
        """The call's queue position changed (e.g. promotion): move it. O(log n)."""
        k = self._key_of.get(request_id)
        if k is not None:
            request = self._by_key[k]
            self.remove_request(request)
            self.add_request(request)

    def heads(self) -> Iterator:
        """Requests in order, lazily (the queue must not change while iterating)."""
        by_key = self._by_key
        for k in self._keys:
            yield by_key[k]

    def __contains__(self, request) -> bool:
        return request.request_id in self._key_of

    def __bool__(self) -> bool:
        return bool(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator:
        return iter([self._by_key[k] for k in self._keys])  # a snapshot: callers may mutate
