"""The one error the data stage raises: a problem a data scientist can fix."""

from __future__ import annotations


class DataError(ValueError):
    """A problem in the data or the mapping a data scientist can fix; the message says where."""
