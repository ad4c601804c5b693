"""``python -m imgpipe`` is the ``imgpipe`` command."""

from imgpipe.entrypoints.cli import main

if __name__ == "__main__":  # worker processes re-import this module; they must not re-run the CLI
    main()
