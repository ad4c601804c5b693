"""Structured (JSON lines) logging for every face, with Powertools' formatter."""

from __future__ import annotations

import logging
import sys

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

__all__ = ["configure_logging"]


def configure_logging(service: str = "imgpipe", level: str = "INFO") -> None:
    """Send every ``imgpipe.*`` log record to stderr as one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LambdaPowertoolsFormatter(service=service))
    root = logging.getLogger("imgpipe")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
