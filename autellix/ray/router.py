"""Program-aware routing as a Ray Serve request router (Ray 2.60).

Ray Serve builds one :class:`AutellixRouter` inside each process that holds a
handle to the engine deployment (here, the ingress replica) and asks it, per
request, for a ranked list of replicas (``choose_replicas``). We answer with one
replica: the one the gateway's balancer (:mod:`autellix.balancer`: the
``autellix`` 2048-token locality rule, ``least_used`` or ``round_robin``) picks
from the process table and the calls in flight, kept in
:class:`autellix.ray.routing.RouterState`. One rule, two engines: the gateway
and this router call the same balancer with the same loads and the same
identity (the ingress reads it with :func:`autellix.gateway.parsing.identify`).

Only one replica is ranked, never a fallback: a long call that Ray cannot place
on its program's replica right now (that replica is full) waits for it, as it
would at the gateway, rather than losing its prefix cache. A replica that dies
leaves Ray's candidate list and the balancer forgets its pins.

Before the request leaves, the router writes the program's service into the
body's ``vllm_xargs.program_service`` (Ray serializes the arguments only when it
sends them, after ``choose_replicas`` returns), as the gateway does.

Settings come from ``RequestRouterConfig.request_router_kwargs``:
``state_key`` (shared with the ingress), ``balancer``, ``n_replicas``, ``ttl``,
``max_entries``.
"""

from __future__ import annotations

from ray.serve.request_router import PendingRequest, RequestRouter, RunningReplica

from autellix.ray.routing import Route, RouterState, shared_state

ROUTER_CLASS = "autellix.ray.router:AutellixRouter"


def route_of(pending: PendingRequest | None) -> Route | None:
    """The call's :class:`Route`, the first argument of every engine call that has one."""
    if pending is None or not pending.args or not isinstance(pending.args[0], dict):
        return None
    try:
        return Route.from_dict(pending.args[0])
    except (KeyError, TypeError, ValueError):
        return None


class AutellixRouter(RequestRouter):
    """Chooses the replica for a call with the gateway's balancer and process table."""

    state: RouterState

    def initialize_state(self, state_key: str = "autellix", balancer: str = "autellix",
                         n_replicas: int = 2, ttl: float = 600.0,
                         max_entries: int = 100_000, **_) -> None:
        self.state = shared_state(state_key, balancer=balancer, n_replicas=n_replicas, ttl=ttl,
                                  max_entries=max_entries)

    def update_replicas(self, replicas: list[RunningReplica]) -> None:
        super().update_replicas(replicas)
        self.state.replicas_changed([r.replica_id for r in replicas])

    def on_replica_actor_died(self, replica_id) -> None:
        super().on_replica_actor_died(replica_id)
        self.state.replicas_changed(list(self.curr_replicas))

    async def choose_replicas(self, candidate_replicas: list[RunningReplica],
                              pending_request: PendingRequest | None = None
                              ) -> list[list[RunningReplica]]:
        if not candidate_replicas:
            return []
        by_id = {r.replica_id: r for r in candidate_replicas}
        route = route_of(pending_request)
        if pending_request is None:
            key, gone = None, None
        else:
            key = pending_request.metadata.internal_request_id
            gone = pending_request.future.cancelled
        chosen = self.state.choose(key, route, list(by_id), gone=gone)
        if route is not None and pending_request is not None and len(pending_request.args) > 2:
            body = pending_request.args[2]
            if isinstance(body, dict) and isinstance(body.get("vllm_xargs"), dict):
                body["vllm_xargs"]["program_service"] = self.state.program_service(route)
        return [[by_id[chosen]]]

    def on_request_completed(self, replica_id, internal_request_id: str) -> None:
        self.state.completed(internal_request_id)
