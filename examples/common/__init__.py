"""Leaf helpers of the example scripts: flags, models, metrics, evaluation, plots, records and
checkpoint I/O. Each script holds its own training loop (paper Algorithm 1); nothing here
imports a script or runs a loop."""
