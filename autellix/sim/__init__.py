"""The calibrated multi-engine simulator: ``simulate(programs, SimConfig(...))``."""

from autellix.sim.sim_config import EngineConfig, SimConfig
from autellix.sim.simulation import SimResult, Simulation, simulate

__all__ = ["EngineConfig", "SimConfig", "SimResult", "Simulation", "simulate"]
