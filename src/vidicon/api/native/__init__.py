"""Vidicon's own API under /v1."""
