"""Stan's NUTS behind one small interface.

CmdStanPy and PyStan engines, the choice between them, the sampler settings both take, and Stan's error
messages trimmed to the line a user needs.

May import ``runtime.model``.
"""
