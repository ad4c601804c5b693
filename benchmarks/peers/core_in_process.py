"""imgpipe's core in one process (diagnostic): core.pipeline.process on each photo - what every
face runs, without the CLI's worker processes and file output. Start-up included.

Usage: python core_in_process.py OUT PHOTO... (the spec of benchmarks/peers.py)"""

import sys
from pathlib import Path

from imgpipe.core.pipeline import process
from imgpipe.settings import Settings

out = Path(sys.argv[1])
settings = Settings()
for number, path in enumerate(sys.argv[2:]):
    for rendition in process(Path(path).read_bytes(), settings).renditions:
        (out / f"{number}-{rendition.filename}").write_bytes(rendition.data)
