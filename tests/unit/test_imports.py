"""Each face loads only what it uses: start-up time is import time (issue: start fast).

Each check runs in a fresh interpreter and looks at ``sys.modules`` - a fact, not a timing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fixtures as F

# sqlite3: the local adapters belong to the local composition root, not to the functions.
_HEAVY = ("numpy", "pyvips", "pillow_heif", "PIL", "boto3", "botocore", "aws_xray_sdk", "rich",
          "pebble", "uvicorn", "sqlite3")  # fmt: skip


def _loaded(module: str, env: dict[str, str] | None = None) -> set[str]:
    code = (f"import sys, json; import {module}; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, **(env or {})}, timeout=60)  # fmt: skip
    return set(json.loads(done.stdout)) & set(_HEAVY)


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        # The API validates uploads with libvips, but only once one arrives.
        # Powertools imports botocore's package (not its clients) for its user agent.
        pytest.param("imgpipe.entrypoints.lambda_api", {"botocore"}, id="lambda-api"),
        # The processor renders: its engine belongs to its start-up (boto3 comes with the app).
        pytest.param(
            "imgpipe.entrypoints.lambda_processor",
            {"pyvips", "PIL", "botocore"},
            id="processor",
        ),
        pytest.param("imgpipe.entrypoints.lambda_dlq", {"botocore"}, id="dead-letters"),
        pytest.param("imgpipe.entrypoints.cli", set(), id="cli"),
    ],
)
def test_a_face_imports_only_what_it_uses(module: str, allowed: set[str]) -> None:
    loaded = _loaded(module, {"POWERTOOLS_TRACE_DISABLED": "true"})
    assert loaded <= allowed, f"{module} loads {sorted(loaded - allowed)} at import"


def test_the_console_scripts_module_loads_nothing_of_the_cli() -> None:
    """A spawned worker re-imports the module the ``imgpipe`` script imports (as
    ``__mp_main__``): that must cost the worker nothing - neither click nor the CLI module."""
    from importlib.metadata import entry_points  # noqa: PLC0415

    (script,) = entry_points(group="console_scripts", name="imgpipe")
    module = script.value.split(":")[0]
    code = (f"import sys, {module}; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] == 'click' or m.startswith('imgpipe.entrypoints')))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    assert done.stdout.strip() == "[]", f"{module} loads {done.stdout.strip()}"


def test_the_x_ray_sdk_loads_only_when_tracing_is_on() -> None:
    env = {"POWERTOOLS_TRACE_DISABLED": "false"}
    assert "aws_xray_sdk" in _loaded("imgpipe.entrypoints.lambda_processor", env)


def test_the_core_starts_no_thread_pool() -> None:
    """Importing the core leaves the process single-threaded: a fork-safe worker has one
    thread (NumPy, whose OpenBLAS pool once broke this, is checked for just below)."""
    code = "import os, sys, imgpipe.core.pipeline; print(len(os.listdir('/proc/self/task')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    assert done.stdout.split() == ["1"]


def test_processing_a_jpeg_loads_neither_the_heic_decoder_nor_numpy() -> None:
    """A worker's start is its imports: pillow-heif is for HEIC only, and the hashes and
    placeholders are computed without NumPy (installed here, for the tests)."""
    code = (
        "import sys, pyvips; from imgpipe.core.pipeline import process; "
        "from imgpipe.settings import Settings; "
        "process(pyvips.Image.black(64, 48).jpegsave_buffer(), Settings()); "
        "print(sorted({'pillow_heif', 'numpy'} & {m.split('.')[0] for m in sys.modules}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    assert done.stdout.strip() == "[]"


def test_imgpipe_process_off_a_terminal_loads_no_progress_bar(tmp_path: Path) -> None:
    """Piped or redirected, ``imgpipe process`` draws no bar, so it does not import one."""
    photo = tmp_path / "a.png"
    photo.write_bytes(F.png())
    code = (
        "import sys\nfrom imgpipe.entrypoints.cli import main\n"
        f"try:\n    main(['process', {str(photo)!r}, '--out', {str(tmp_path / 'out')!r}])\n"
        "except SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        "print('rich.progress' in sys.modules, 'rich.console' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)  # fmt: skip
    assert done.stdout.split() == ["False", "True"]
