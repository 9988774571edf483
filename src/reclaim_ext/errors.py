"""Errors the user can cause. The CLI prints them as one line and exits non-zero."""


class ReclaimExtError(Exception):
    """A problem with the user's input or configuration (never a bug in reclaim-ext).

    The message is one printable line: control characters quoted from the input (a header of
    binary bytes, a carriage return in a spec) are escaped, so the CLI's error stays one line."""

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], str):
            args = (_printable(args[0]),)
        super().__init__(*args)


def _printable(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


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
