"""``python -m imgpipe`` and the ``imgpipe`` console script.

The CLI is imported inside ``main``, not at the top: a spawned worker process re-imports the
module its parent's console script imported (as ``__mp_main__``), and click, the settings
loader and the CLI's own module would cost each worker start ~30 ms of CPU for nothing.
"""


def main() -> None:
    from imgpipe.entrypoints.cli import main as cli  # noqa: PLC0415 - see the module docstring

    cli()


if __name__ == "__main__":  # worker processes re-import this module; they must not re-run the CLI
    main()
