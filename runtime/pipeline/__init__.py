"""One ensemble run from request to report.

The typed request (``EnsembleRequest``) and the pipeline that the Python API and
``python -m runtime.submit`` both call.

May import every other subpackage (``runtime.model``, ``runtime.sbc``, ``runtime.engines``,
``runtime.store``, ``runtime.aws``, ``runtime.ensemble``, ``runtime.fitting``, ``runtime.executors``,
``runtime.report``); only the entry points above it import it.
"""
