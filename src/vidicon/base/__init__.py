"""Foundations with no knowledge of the domain."""
