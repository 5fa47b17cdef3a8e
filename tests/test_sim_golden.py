"""The simulator's figures are pinned: a restructuring or a speed-up must not change a
result. ``tests/data/sim_golden.json`` holds the figures of every case in
``golden_sim.py`` from main 503fc34, before the simulator core was restructured
(issue 11). A change that alters results *on purpose* must name the case here with
its reason, and update the file."""

import json
import math
from pathlib import Path

import pytest
from golden_sim import CASES, figures

GOLDEN = json.loads((Path(__file__).parent / "data" / "sim_golden.json").read_text())

# case -> why its figures differ from the pinned ones (none so far)
CHANGED_ON_PURPOSE: dict[str, str] = {}


def test_every_case_is_pinned():
    assert set(GOLDEN) == set(CASES)


@pytest.mark.parametrize("name", sorted(set(CASES) - set(CHANGED_ON_PURPOSE)))
def test_simulator_figures_match_the_pinned_ones(name):
    got, want = figures(name), GOLDEN[name]
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-12), \
            (name, key, got[key], value)
