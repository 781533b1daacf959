"""Simulated humans (feedback models), wrappers that attach them to envs, learned models."""
