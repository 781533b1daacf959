"""feedbackgym: reinforcement learning from simulated human feedback."""

from feedbackgym.envs import register_envs as _register_envs

__version__ = "0.1.0"

_register_envs()
