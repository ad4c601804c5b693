"""imgpipe: validate, render, describe and tag images - on one machine or on AWS.

The public surface of the core is re-exported here; faces (CLI, HTTP, Lambda) live in
``imgpipe.entrypoints``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
