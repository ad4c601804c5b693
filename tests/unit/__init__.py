"""The pure core, with fixtures the tests generate themselves."""
