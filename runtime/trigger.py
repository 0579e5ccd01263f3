"""The trigger Lambda's handler, ``runtime.trigger.handler``: see :mod:`runtime.aws.trigger`."""

from runtime.aws.trigger import handler

__all__ = ["handler"]
