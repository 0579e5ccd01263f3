"""What a worker does.

Fit one replicate, score it (ranks, z-scores, diagnostics), share compiled builds through the store,
serve replicates over the worker protocol, and fit a task of replicates for a cluster scheduler.

Named for the job rather than ``worker``: ``python -m runtime.worker`` stays the worker's entry point.
May import ``runtime.model``, ``runtime.sbc``, ``runtime.engines``, ``runtime.store`` and
``runtime.ensemble``.
"""
