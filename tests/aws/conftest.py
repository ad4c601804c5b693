"""Fixtures of ``aws_support`` (a moto server on 127.0.0.1, fresh resources per test)."""

from __future__ import annotations

from aws_support import aws_stack, moto_endpoint

__all__ = ["aws_stack", "moto_endpoint"]
