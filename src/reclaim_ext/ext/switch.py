"""Attaching, detaching and replacing a policy at a given access of a run ("switch policy
halfway" as a one-line experiment): `--switch 1000000:s3fifo`, `--switch 500000:none`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from ..errors import ConfigError
from ..trace.base import DEFAULT_CHUNK, Trace

DETACH = ("none", "classic")  # the built-in policy decides from then on


@dataclass(frozen=True)
class Switch:
    at: int                # the access index before which the switch happens
    policy: str | None     # a policy spec, or None to detach
    scope: str = "system"  # where (system, node:N, memcg:/PATH)
    written: str = field(default="", compare=False)  # POLICY as given ('none', 'classic', 'lru', ...)


def parse_switch(text: str) -> Switch:
    """AT:POLICY[@SCOPE]: before access AT, attach POLICY to SCOPE (default the system), replacing
    what is attached there; POLICY 'none' detaches."""
    at, sep, policy = str(text).partition(":")
    if not sep or not policy:
        raise ConfigError(f"switch: {text!r} is not AT:POLICY (e.g. 1000000:s3fifo or 500000:none)")
    policy, at_sep, scope = policy.rpartition("@") if "@" in policy else (policy, "", "system")
    if at_sep and not (policy and scope):
        raise ConfigError(f"switch: {text!r} is not AT:POLICY@SCOPE (e.g. 1000:lru@memcg:/a)")
    try:
        n = int(at.replace("_", ""))
    except ValueError:
        raise ConfigError(f"switch: {at!r} is not an access index") from None
    if n < 0:
        raise ConfigError(f"switch: access index {n} is negative")
    return Switch(n, None if policy in DETACH else policy, scope, policy)


class CutTrace(Trace):
    """A trace whose chunks end exactly at the given access indexes, and at every multiple of each
    of `every` (a periodic controller's ticks), so a switch or a tick happens between two chunks."""

    def __init__(self, trace: Trace, cuts: list[int], every: tuple[int, ...] = ()):
        super().__init__(name=trace.name, length=trace.length, params=trace.params)
        self.trace = trace
        self.cuts = sorted(set(c for c in cuts if c > 0))
        self.every = tuple(sorted(set(e for e in every if e > 0)))

    def _next_cut(self, cuts: list[int], pos: int) -> int | None:
        """The first cut after `pos` (None: no more)."""
        while cuts and cuts[0] <= pos:
            cuts.pop(0)
        nxt = [cuts[0]] if cuts else []
        nxt += [(pos // e + 1) * e for e in self.every]
        return min(nxt) if nxt else None

    def chunks(self, chunk: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        pos = 0
        cuts = list(self.cuts)
        for c in self.trace.chunks(chunk):
            start = 0
            while (cut := self._next_cut(cuts, pos)) is not None and cut < pos + len(c) - start:
                k = cut - pos
                yield c[start:start + k]
                pos += k
                start += k
            if start < len(c):
                yield c[start:]
                pos += len(c) - start
