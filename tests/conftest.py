"""Configuration shared by every test layer: keep it generic and small.

Image fixtures are plain generator functions in ``tests/fixtures.py`` (``import fixtures``):
``tests/`` is not a package, so pytest puts this directory on ``sys.path``.
"""

from __future__ import annotations

import os

from hypothesis import settings

# No per-example deadline: a loaded 2-core CI box must not turn slowness into failures.
settings.register_profile("imgpipe", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "imgpipe"))
