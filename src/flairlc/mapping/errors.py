"""The error of the mapping stage: an input that is missing, malformed or does not fit."""

from __future__ import annotations


class MappingInputError(ValueError):
    """An input raster of the mapper is missing, malformed or does not match the others."""
