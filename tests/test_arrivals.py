"""The simulator and ``autellix replay`` draw one arrival schedule (issue 13)."""

from autellix import replay
from autellix.sim import EngineConfig, SimConfig, Simulation
from autellix.workloads.registry import generate


def test_replay_and_the_simulator_draw_the_same_arrival_times_for_a_seed():
    programs = generate("chatbot", 50, 0)
    for seed, rate in ((0, 0.7), (3, 5.0)):
        sim = Simulation(programs, SimConfig(policy="fcfs", rate=rate, seed=seed,
                                             engine=EngineConfig(max_num_seqs=4)))
        want = replay.poisson_arrivals(len(programs), rate, seed)
        assert sim.arrivals == want and want[0] == 0.0


def test_the_first_simulated_program_arrives_at_time_zero():
    programs = generate("react", 5, 1)
    res = Simulation(programs, SimConfig(policy="plas", rate=0.5, seed=2)).run()
    assert min(p.arrival for p in res.programs) == 0.0
