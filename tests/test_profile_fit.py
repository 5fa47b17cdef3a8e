"""`autellix profile`'s fit: it recovers a known cost model from step records."""

import json
import random

import pytest

from autellix.errors import AutellixError
from autellix.profile_fit import fit_steps, profile_dict, read_steps
from autellix.sim.costmodel import CostModel, Profile


def synthetic_steps(n=400, noise=0.0, seed=0):
    """Steps timed by a cost model with known constants (noise: relative jitter)."""
    r = random.Random(seed)
    steps = []
    for _ in range(n):
        dec = r.randint(0, 8)
        ctx = sum(r.randint(16, 2000) for _ in range(dec))
        chunks = [(e, e + r.randint(0, 1500)) for e in
                  (r.randint(16, 512) for _ in range(r.randint(0, 2)))]
        if not dec and not chunks:
            dec, ctx = 1, 100
        n_tok = dec + sum(e for e, _ in chunks)
        es = sum(e * s for e, s in chunks)
        sampled = dec + sum(1 for _ in chunks)
        ms = 3.0 + 0.02 * n_tok + 0.0004 * (ctx + dec) + 1e-6 * es + 0.05 * sampled
        steps.append({"dt": ms * (1 + noise * r.uniform(-1, 1)) / 1e3,
                      "prefill_tokens": n_tok - dec, "decode_seqs": dec,
                      "context_tokens": ctx, "prefill_attention": es, "sampled": sampled})
    return steps


def test_the_fit_recovers_the_constants_that_timed_the_steps():
    fit = fit_steps(synthetic_steps())
    want = {"overhead": 3.0, "per_token": 0.02, "c_dec": 0.0004, "c_pf": 1e-6,
            "per_sampled": 0.05}
    for k, v in want.items():
        assert fit.coef[k] == pytest.approx(v, rel=1e-6), k
    assert fit.median_rel_error < 1e-9 and abs(fit.total_rel_error) < 1e-9


def test_noisy_steps_give_an_error_near_the_noise_and_no_negative_cost():
    fit = fit_steps(synthetic_steps(noise=0.2, seed=3))
    assert all(v >= 0 for v in fit.coef.values())
    assert 0.02 < fit.median_rel_error < 0.2 and abs(fit.total_rel_error) < 0.02


def test_a_profile_from_a_fit_loads_into_the_simulator_and_predicts_like_the_fit():
    steps = synthetic_steps()
    fit = fit_steps(steps)
    prof = Profile.from_dict({**profile_dict(fit, name="t", model="m", device="cpu",
                                             kv_capacity_tokens=4096)})
    cost = CostModel(prof)
    # one prefill chunk of 100 new tokens ending at 300, plus 3 decodes over 900 context
    ms = cost.step_seconds([(100, 300)], 3, 900, 4) * 1e3
    s = {"prefill_tokens": 100, "decode_seqs": 3, "context_tokens": 897,
         "prefill_attention": 100 * 300, "sampled": 4}
    assert ms == pytest.approx(fit.predict_ms(s), rel=1e-9)


def test_step_logs_that_cannot_be_fitted_are_refused_with_a_reason(tmp_path):
    p = tmp_path / "steps.jsonl"
    p.write_text(json.dumps({"t": 0, "event": "arrived"}) + "\n")
    with pytest.raises(AutellixError, match="too few"):
        fit_steps(read_steps(p))
    p.write_text("{not json\n")
    with pytest.raises(AutellixError, match="not a JSON line"):
        read_steps(p)
    p.write_text(json.dumps({"dt": 0.1, "prefill_tokens": 1}) + "\n")
    with pytest.raises(AutellixError, match="older autellix"):
        read_steps(p)
    with pytest.raises(AutellixError, match="cannot read"):
        read_steps(tmp_path / "missing.jsonl")


@pytest.mark.parametrize("args,msg", [
    (["--engine-url", "http://127.0.0.1:9"], "needs --step-log"),
    (["--from-log", "/nonexistent/steps.jsonl"], "cannot read the step log"),
    (["--batches", "1,x"], "comma-separated integers"),
    (["--batches", "32"], "--max-num-seqs"),
])
def test_profile_refuses_bad_input_with_one_line(args, msg, tmp_path):
    from typer.testing import CliRunner

    from autellix.cli.app import app

    r = CliRunner().invoke(app, ["profile", "--out", str(tmp_path / "p.json"), *args])
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert r.exit_code != 0 and len(lines) == 1 and msg in lines[0], r.output


def test_profile_fits_a_recorded_step_log_without_an_engine(tmp_path):
    from typer.testing import CliRunner

    from autellix.cli.app import app

    log = tmp_path / "steps.jsonl"
    log.write_text("".join(json.dumps(s) + "\n" for s in synthetic_steps(noise=0.05)))
    out = tmp_path / "p.json"
    r = CliRunner().invoke(app, ["profile", "--from-log", str(log), "--out", str(out),
                                 "--kv-capacity-tokens", "8192"])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["kv_capacity_tokens"] == 8192 and doc["fit"]["steps"] == 400
    assert doc["overhead_ms"] == pytest.approx(3.0, rel=0.1)


def test_reading_from_an_offset_sees_only_the_steps_written_after_it(tmp_path):
    p = tmp_path / "steps.jsonl"
    first, later = synthetic_steps(3, seed=1), synthetic_steps(4, seed=2)
    p.write_text("".join(json.dumps(s) + "\n" for s in first))
    offset = p.stat().st_size
    with open(p, "a") as fp:
        fp.write("".join(json.dumps(s) + "\n" for s in later))
    assert read_steps(p, offset) == later and read_steps(p) == first + later
