"""An ensemble as data.

Its spec and id, the run record, the generators that simulate datasets, the preparation that publishes
inputs and finds what is left to fit, the cost estimate, and the lock that keeps two local submissions
of one ensemble from fitting it twice.

May import ``runtime.model``, ``runtime.sbc``, ``runtime.engines`` and ``runtime.store``.
"""
