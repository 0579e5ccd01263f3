"""Where everything an ensemble has lives.

The object-store protocol, the local-directory and S3 stores, every key and bucket prefix (``keys``),
the packed simulated inputs, and atomic file writes.

May import ``runtime.model`` (the inputs are conformed replicates). The trigger Lambda imports
``keys``, so nothing here may import more than the standard library at the package level.
"""
