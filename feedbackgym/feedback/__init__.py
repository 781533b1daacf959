"""Simulated humans (feedback models), the wrappers that attach them to envs, learned feedback models."""
