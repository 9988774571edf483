"""Errors of the kernel validation."""

from ..errors import ReclaimExtError


class Unavailable(ReclaimExtError):
    """The host cannot run the kernel replay (not root, no memory controller, no compiler, ...)."""


class CgroupError(ReclaimExtError):
    """Setting up or removing the probe memory cgroup failed."""
