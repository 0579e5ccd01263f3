"""What the user reads.

Figures and their PNGs, the HTML page, the report's files, the Python report object, the terminal
table, ensembles compared, and reports rebuilt from stored results.

May import ``runtime.model`` (the cache directory), ``runtime.sbc``, ``runtime.store``, ``runtime.aws``,
``runtime.ensemble`` and ``runtime.executors`` (for the usable core count).
"""
