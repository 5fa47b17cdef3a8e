"""Outlier ejection (Envoy style), driven by explicit clock readings: no wall-clock."""

from __future__ import annotations

import pytest

from autellix.gateway.outlier import EjectionPolicy, EngineHealth, OutlierDetector

A, P, E = EngineHealth.ADMITTED, EngineHealth.PROBING, EngineHealth.EJECTED


def detector(**kw) -> OutlierDetector:
    return OutlierDetector(EjectionPolicy(**{"eject_after": 3, "base": 1.0, "max": 8.0, **kw}))


def fail(d: OutlierDetector, now: float) -> bool:
    return d.failure(now, "boom", d.begin(now))


def test_consecutive_failures_eject_and_a_success_resets_the_count():
    d = detector()
    assert not fail(d, 0) and not fail(d, 0)
    d.success(0, d.begin(0))  # the run of failures is broken
    assert not fail(d, 0) and not fail(d, 0) and d.state is A
    assert fail(d, 0) and d.state is E and d.ejections == 1
    assert not d.available(0.999, 0) and d.available(1.0, 0) and d.state is P


def test_half_open_takes_one_trial_and_only_its_success_readmits():
    d = detector(eject_after=1)
    fail(d, 0)
    assert d.available(1.0, 0)
    trial = d.begin(1.0)
    assert trial[1] and d.state is P
    assert not d.available(1.5, 1)  # one trial at a time
    assert d.success(2.0, trial) and d.state is A and d.available(2.0, 0)


def test_a_failed_trial_ejects_for_twice_as_long():
    d = detector(eject_after=1)
    fail(d, 0)                       # ejected 1 s
    assert d.available(1.0, 0)
    assert d.failure(1.0, "still hung", d.begin(1.0)) and d.state is E
    assert not d.available(2.9, 0) and d.available(3.0, 0)   # 2 s
    assert fail(d, 3.0)
    assert not d.available(6.9, 0) and d.available(7.0, 0)   # 4 s
    for t in (7.0, 15.0, 23.0):      # capped at max = 8 s
        assert d.available(t, 0) and fail(d, t)
    assert not d.available(30.9, 0) and d.available(31.0, 0)


def test_health_probes_eject_but_never_readmit():
    d = detector()
    assert not d.health(True, 0.0) and d.state is A
    assert not d.health(False, 0.0) and not d.health(False, 0.0)  # two failed probes ...
    assert not d.health(True, 0.0)                                # ... then a pass resets
    assert not d.health(False, 0.0) and not d.health(False, 0.0)
    assert d.health(False, 0.0, "/health answered 500") and d.state is E  # three in a row
    assert not d.health(False, 0.5) and d.ejections == 1  # no pile-up while ejected
    for t in (1.0, 2.0, 50.0):
        d.health(True, t)
        assert d.state is not A      # only a real call re-admits
    assert d.available(50.0, 0) and d.success(50.0, d.begin(50.0)) and d.state is A


def test_outcomes_of_calls_sent_before_the_ejection_are_stale():
    d = detector(eject_after=1)
    old = [d.begin(0.0) for _ in range(5)]  # a hung engine holds five calls
    assert d.failure(0.0, "read timeout", old[0]) and d.ejections == 1
    assert d.available(1.0, 4)
    trial = d.begin(1.0)
    for t in old[1:]:                # their timeouts arrive during the trial
        assert not d.failure(1.2, "read timeout", t)
    assert d.state is P and d.trial and d.ejections == 1
    assert not d.success(1.3, old[1]) and d.state is P  # nor does a stale success readmit
    assert d.success(1.5, trial) and d.state is A


def test_client_disconnect_frees_the_trial_slot_without_a_verdict():
    d = detector(eject_after=1)
    fail(d, 0)
    d.available(1.0, 0)
    trial = d.begin(1.0)
    d.released(trial)
    assert d.state is P and d.available(1.0, 0) and d.begin(1.0)[1]


def test_concurrency_limit_skips_a_full_engine():
    d = detector(max_inflight=2)
    assert d.available(0, 0) and d.available(0, 1) and not d.available(0, 2)


def test_ejection_level_decays_while_the_engine_serves():
    d = detector(eject_after=1, max=8.0)
    for t in (0.0, 1.0, 3.0):        # three ejections: 1, 2, 4 s
        d.available(t, 0)
        fail(d, t)
    d.available(7.0, 0)
    d.success(7.0, d.begin(7.0))     # re-admitted at t=7 with level 3
    fail(d, 7.0 + 2 * 8.0)           # 16 s of service later: two levels forgiven
    assert d.until == pytest.approx(23.0 + 2.0)


def test_policy_validation_says_what_to_change():
    with pytest.raises(ValueError, match="eject_after"):
        EjectionPolicy(eject_after=0)
    with pytest.raises(ValueError, match="base"):
        EjectionPolicy(base=10, max=5)
    with pytest.raises(ValueError, match="max_inflight"):
        EjectionPolicy(max_inflight=0)


def test_call_failures_may_leave_the_last_engine_admitted_but_a_trial_still_ejects():
    d = detector(eject_after=1)
    assert not d.failure(0.0, "burst timeout", d.begin(0.0), may_eject=False)
    assert d.state is A and d.failures == 1
    assert d.failure(0.0, "again", d.begin(0.0), may_eject=True) and d.state is E
    d.available(1.0, 0)
    assert d.failure(1.0, "trial failed", d.begin(1.0), may_eject=False) and d.state is E
