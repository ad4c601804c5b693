"""Conformance over the shared real-world corpus (skipped where it is absent)."""
