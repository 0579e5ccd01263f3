"""The statistics of simulation-based calibration, in numpy and scipy only.

A replicate's scored result, ranks and thinning (worker side), the uniformity test and ECDF band, and
the ensemble's verdict.

Imports nothing from ``runtime`` but ``runtime.errors``; no ArviZ or Matplotlib at import time.
"""
