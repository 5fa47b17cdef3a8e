"""The capacity probe's estimator, on synthetic bursts: a real engine's capacity is the
completion rate over the middle half of a burst, so ramp-up and drain do not count."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from autellix.cli.app import app
from autellix.errors import EngineError
from autellix.metrics import ProgramRecord
from autellix.real_capacity import saturated_throughput


def _burst(finishes, status="completed"):
    return [ProgramRecord(f"p{i}", "test", "chain", 0.0, f, 1, 10, status=status)
            for i, f in enumerate(finishes)]


def test_a_steady_completion_rate_is_read_from_the_middle_half_only():
    # 16 programs: a slow ramp (first 4), 0.5 s apart in the middle, a long drain
    finish = [5.0, 6.0, 7.0, 8.0] + [10.0 + 0.5 * i for i in range(8)] + [30, 40, 50, 60]
    cap = saturated_throughput(_burst(finish))
    # indices 4..11: 7 completions over 3.5 s, whatever the ramp and the drain did
    assert cap.counted == 7 and cap.span_s == pytest.approx(3.5)
    assert cap.programs_per_s == pytest.approx(2.0)
    assert cap.makespan_s == 60 and cap.programs == 16


def test_finish_order_does_not_matter():
    finish = [10.0 + 0.25 * i for i in range(12)]
    assert saturated_throughput(_burst(finish[::-1])).programs_per_s == pytest.approx(4.0)


def test_a_program_that_did_not_complete_makes_the_probe_fail_with_its_status():
    recs = _burst([float(i + 1) for i in range(8)])
    recs[3].status = "failed"
    with pytest.raises(EngineError, match="1 of 8 programs did not complete.*p3 failed"):
        saturated_throughput(recs)


def test_too_small_or_instantaneous_bursts_are_refused():
    with pytest.raises(EngineError, match=">= 8 programs"):
        saturated_throughput(_burst([1.0, 2.0]))
    with pytest.raises(EngineError, match="one instant"):
        saturated_throughput(_burst([3.0] * 10))


runner = CliRunner()


@pytest.mark.parametrize("args, message", [
    (["--rates", "1", "--loads", "0.5"], "give --rates or --loads, not both"),
    (["--capacity-programs", "-1"], "--capacity-programs must be >= 0"),
    (["--policies", "vllm-opt,srpt"], "srpt is simulator-only"),
])
def test_compare_on_real_engines_rejects_bad_options_before_starting_any(tmp_path, args,
                                                                         message):
    r = runner.invoke(app, ["compare", "--engine", "vllm", "--out", str(tmp_path), *args])
    assert r.exit_code != 0 and message in r.output, r.output
    assert not any(tmp_path.iterdir())
