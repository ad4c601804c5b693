"""Implementations of the ports in ``imgpipe.ports``: ``local`` (filesystem, SQLite) and, later,
``aws``. One file per backend and role; ``imgpipe.bootstrap`` is the only module that picks."""
