"""The Stan program and its data.

What ``stanc --info`` declares, where model files live, scalar names of array variables, data checked
and shaped against the declarations, and test quantities.

Imports nothing from ``runtime`` but ``runtime.errors``: every other concern reads models through it.
"""
