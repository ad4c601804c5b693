"""The ``imgpipe`` command through click's CliRunner."""
