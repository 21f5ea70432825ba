"""The ``nfloop`` command line."""
