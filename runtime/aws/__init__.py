"""AWS glue shared by the submitter, the trigger Lambda and ``runtime.cancel``.

The deployed stack's outputs, the manifest an upload carries, Batch job helpers and the trigger handler
itself.

May import ``runtime.store``. ``manifest``, ``batch_jobs`` and ``trigger`` are standard library and
boto3 only: the Lambda's asset carries them.
"""
