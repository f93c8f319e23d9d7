"""Prefect flows that wire the stages together, and the ``tunesmith`` command line that triggers them."""
