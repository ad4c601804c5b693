"""The pure core: bytes in, renditions + metadata + tags (or a typed rejection) out.

Nothing here imports AWS, HTTP or database code; the only I/O is the bytes handed in.
"""

import os

# NumPy here only multiplies 32 x 32 matrices (the perceptual hash) and sums 64 px samples:
# OpenBLAS' thread pool, started when NumPy is first imported, only costs CPU - ~0.1 CPU-s at
# every worker and Lambda start, measured - and leaves a thread behind in each process. Set
# before any core module imports NumPy; a caller's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
