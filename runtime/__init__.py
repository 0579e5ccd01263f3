"""StanFleet runtime: the CLI, the fit-and-score worker and (later) the trigger handler.

Kept free of eager imports so that light deployables (the Lambda handler) import only what they use.
"""
