"""The error raised for bad FLAIR input: it names the file and the problem."""

from __future__ import annotations

from pathlib import Path


class FlairDataError(ValueError):
    """A FLAIR file or folder is missing, unreadable or inconsistent with the format.

    Args:
        path: the offending file or folder.
        problem: what is wrong, in words a user can act on.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")
