"""Readers for weights stored in other frameworks' file formats (no framework needed)."""
