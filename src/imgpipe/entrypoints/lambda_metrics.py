"""The functions' CloudWatch metrics (embedded metric format, through Powertools).

Namespace and service come from the environment the template sets (``POWERTOOLS_METRICS_NAMESPACE``,
``POWERTOOLS_SERVICE_NAME``; ``imgpipe`` when unset), and every metric also carries a ``stack``
dimension (``IMGPIPE_STACK``, the stack's name), so two stacks in one account never add to the
same metric or alarm. The template's alarms on these metrics name the same dimensions; a test
compares them with what the handlers print.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Metrics

__all__ = ["dimensions", "function_metrics", "namespace", "refresh"]


def namespace() -> str:
    return os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "imgpipe"


def dimensions() -> dict[str, str]:
    """The dimensions every metric carries: ``service`` and, on a stack, ``stack``."""
    found = {"service": os.environ.get("POWERTOOLS_SERVICE_NAME") or "imgpipe"}
    if stack := os.environ.get("IMGPIPE_STACK", "").strip():
        found["stack"] = stack
    return found


def function_metrics() -> Metrics:
    """A function's ``Metrics``; call ``refresh`` at the start of each invocation."""
    return Metrics(namespace=namespace(), service=dimensions()["service"])


def refresh(metrics: Metrics) -> None:
    """Follow the environment's namespace and ``stack`` dimension. In Lambda the environment is
    fixed, so this sets the dimension once per container; a test changes it between
    invocations. (Setting a default dimension again would warn on every invocation.)"""
    metrics.namespace = namespace()
    stack = dimensions().get("stack")
    if metrics.default_dimensions.get("stack") != stack:
        metrics.default_dimensions.pop("stack", None)
        metrics.dimension_set.pop("stack", None)
        if stack is not None:
            metrics.set_default_dimensions(stack=stack)
