"""The executor seam.

The protocol, the local process pool, AWS Batch, a Dask cluster, the backend choice, the progress bar,
and the lifetime of the processes they start.

May import ``runtime.engines``, ``runtime.store``, ``runtime.aws`` and ``runtime.fitting`` (the worker
protocol).
"""
