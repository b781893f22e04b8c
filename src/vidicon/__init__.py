"""Vidicon: an open-source network video recorder and video management server."""

__version__ = "0.1.0"
