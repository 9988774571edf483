"""Errors the user can cause. The CLI prints them as one line and exits non-zero."""


class ReclaimExtError(Exception):
    """A problem with the user's input or configuration (never a bug in reclaim-ext)."""


class TraceError(ReclaimExtError):
    """A trace file or trace generator parameter that cannot be used.

    The message always starts with the file (or workload) name, then the problem.
    """

    def __init__(self, source: str, problem: str):
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


class ConfigError(ReclaimExtError, ValueError):
    """A bad option value (size, swappiness, ...); also a ValueError, for callers of the Python API."""
