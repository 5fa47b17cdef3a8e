"""The Ray router's state (autellix.ray.routing) without Ray: slots, loads, pins, table."""

from __future__ import annotations

import pytest

from autellix.balancer import NoEngineAvailable
from autellix.ray.routing import Route, RouterState, shared_state


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def route(pid: str, call: str, tokens: int = 10, one_call: bool = False) -> Route:
    return Route(pid, call, call, tokens, one_call)


def make(balancer: str = "autellix", replicas=("a", "b")) -> tuple[RouterState, Clock]:
    clock = Clock()
    s = RouterState(balancer, n_replicas=len(replicas), clock=clock)
    s.replicas_changed(list(replicas))
    return s, clock


def test_short_calls_go_to_the_least_loaded_replica():
    s, _ = make()
    picks = [s.choose(i, route(f"p{i}", f"c{i}"), ["a", "b"]) for i in range(4)]
    assert picks == ["a", "b", "a", "b"] and s.loads == [2, 2]


def test_long_calls_of_a_program_stay_on_its_replica_whatever_the_load():
    s, _ = make()
    first = s.choose(1, route("p", "c1", tokens=3000), ["a", "b"])
    for i in range(2, 6):
        assert s.choose(i, route("p", f"c{i}", tokens=3000), ["a", "b"]) == first
    assert s.loads[s.slot_of[first]] == 5


def test_the_2048_token_boundary_is_the_gateways():
    s, _ = make()
    s.choose(0, route("x", "c0"), ["a"])  # load replica a
    assert s.choose(1, route("p", "c1", tokens=2049), ["a", "b"]) == "b"  # pinned to b
    s.choose(2, route("y", "c2"), ["a", "b"])
    s.choose(3, route("z", "c3"), ["a", "b"])
    assert s.loads == [2, 2]
    assert s.choose(4, route("p", "c4", tokens=2048), ["a", "b"]) == "a"  # short: least used
    assert s.choose(5, route("p", "c5", tokens=2049), ["a", "b"]) == "b"  # long: its pin


def test_asking_twice_for_one_request_keeps_the_first_choice_and_counts_it_once():
    s, _ = make("round_robin")
    assert s.choose("r", route("p", "c"), ["a", "b"]) == "a"
    assert s.choose("r", route("p", "c"), ["a", "b"]) == "a"
    assert s.loads == [1, 0] and s.routed == 1
    assert s.choose("r2", route("q", "c2"), ["a", "b"]) == "b"  # round robin moved on once


def test_a_request_whose_replica_left_the_candidates_moves_with_its_load():
    s, _ = make()
    assert s.choose("r", route("p", "c", tokens=3000), ["a", "b"]) == "a"
    assert s.choose("r", route("p", "c", tokens=3000), ["b"]) == "b"
    assert s.loads == [0, 1]
    assert s.table.get("p").threads["c"].engine == 1


def test_completion_folds_service_into_the_program_and_frees_the_load():
    s, clock = make()
    s.choose("r1", route("p", "c1"), ["a", "b"])
    clock.t += 2.0
    s.completed("r1")
    assert s.loads == [0, 0]
    info = s.program_info("p")
    assert info["calls"] == 1 and info["service"] == pytest.approx(2.0)
    s.choose("r2", route("p", "c2"), ["a", "b"])
    assert s.program_service(route("p", "c2")) == pytest.approx(2.0)  # copied at routing


def test_a_streamed_call_is_charged_after_its_first_chunk_and_waits_until_it():
    s, clock = make()
    s.choose("r", route("p", "c"), ["a", "b"])
    clock.t += 1.0
    s.first_chunk("c")
    clock.t += 3.0
    s.completed("r")
    e = s.table.get("p")
    assert e.service == pytest.approx(3.0) and e.wait == pytest.approx(1.0)


def test_a_one_call_program_ends_with_its_call():
    s, _ = make()
    s.choose("r", route("call-x", "x", one_call=True), ["a", "b"])
    assert s.program_info("call-x") is None
    s.completed("r")
    assert len(s.table) == 0 and s.loads == [0, 0]


def test_a_replica_that_goes_away_loses_its_pins_and_its_replacement_takes_the_slot():
    s, _ = make()
    s.choose(1, route("p", "c1", tokens=3000), ["a", "b"])
    s.completed(1)
    assert s.balancer.pins == {"p": 0}
    s.replicas_changed(["b"])
    assert s.balancer.pins == {}
    assert s.choose(2, route("p", "c2", tokens=3000), ["b"]) == "b"
    s.replicas_changed(["b", "c"])
    assert s.slot_of == {"b": 1, "c": 0}


def test_more_replicas_than_configured_widen_the_balancer():
    s, _ = make(replicas=("a", "b"))
    s.replicas_changed(["a", "b", "c"])
    picks = {s.choose(i, route(f"p{i}", f"c{i}"), ["a", "b", "c"]) for i in range(3)}
    assert picks == {"a", "b", "c"}


def test_a_request_its_caller_gave_up_on_is_dropped_at_the_next_routing():
    s, _ = make()
    gave_up = {"r": False}
    s.choose("r", route("p", "c"), ["a", "b"], gone=lambda: gave_up["r"])
    gave_up["r"] = True
    s.choose("r2", route("q", "c2"), ["a", "b"])
    assert s.loads == [1, 0] and s.program_info("p")["calls"] == 1  # r2 took the freed one


def test_a_call_without_a_route_goes_to_the_least_loaded_replica_untracked():
    s, _ = make()
    s.choose("r", route("p", "c"), ["a", "b"])
    assert s.choose(None, None, ["a", "b"]) == "b"
    assert s.loads == [1, 0] and s.routed == 1


def test_no_candidate_replica_is_an_error_not_a_guess():
    s, _ = make()
    with pytest.raises(NoEngineAvailable):
        s.balancer.choose("p", 10, s.loads, {0, 1})


def test_programs_start_show_and_end_as_at_the_gateway():
    s, _ = make()
    s.start_program("p")
    assert s.program_info("p")["calls"] == 0
    assert s.end_program("p")["id"] == "p"
    assert s.end_program("p") is None and s.program_info("p") is None


def test_the_ingress_and_the_router_share_one_state_per_deployment():
    a = shared_state("test-shared", balancer="least_used", n_replicas=3)
    b = shared_state("test-shared", balancer="autellix", n_replicas=1)
    assert a is b and a.balancer_name == "least_used"


def test_a_route_survives_the_trip_through_a_plain_dict():
    r = Route("p", "t", "c", 2049, True)
    assert Route.from_dict(r.to_dict()) == r
