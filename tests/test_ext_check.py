"""`reclaim-ext check`: a sound policy passes every scenario; a broken one is reported with the
scenario, the hook and the reason, and the command exits 1."""

from __future__ import annotations

import json

from conftest import invoke, write_raising_lru


def test_check_passes_a_sound_policy():
    r = invoke("check", "lru")
    assert r.exit_code == 0, r.output
    assert "no problem found" in r.stdout and "FAIL" not in r.stdout


def test_check_reports_a_raising_policy(tmp_path):
    r = invoke("check", write_raising_lru(tmp_path), "--json", "-")
    assert r.exit_code == 1
    findings = json.loads(r.stdout)
    bad = [f for f in findings if not f["ok"]]
    assert bad and all("ERROR_POLICY" in f["detail"] and "evict()" in f["detail"] for f in bad)


def test_check_reports_a_starving_corner_case(tmp_path):
    """A CLOCK whose sweep stops at the head: fine with many pages, starves at capacity 1 (the
    bug `check` found in the first examples/hello.py)."""
    src = tmp_path / "clock1.py"
    src.write_text(
        "from reclaim_ext.ext import IndexedList, Policy\n\n"
        "class C(Policy):\n"
        "    def init(self, ctx):\n"
        "        self.q, self.ref = IndexedList(), set()\n"
        "    def added(self, ctx, hs):\n"
        "        [self.q.push_head(h) for h in hs.tolist()]\n"
        "    def accessed(self, ctx, hs):\n"
        "        self.ref.update(hs.tolist())\n"
        "    def removed(self, ctx, hs):\n"
        "        [(self.q.discard(h), self.ref.discard(h)) for h in hs.tolist()]\n"
        "    def evict(self, ctx, n):\n"
        "        out, h = [], self.q.tail()\n"
        "        while h is not None and len(out) < n:\n"
        "            nxt = self.q.prev(h)\n"
        "            if h in self.ref:\n"
        "                self.ref.discard(h); self.q.move_head(h)\n"
        "            else:\n"
        "                out.append(h)\n"
        "            h = nxt\n"
        "        return out\n"
    )
    r = invoke("check", str(src))
    assert r.exit_code == 1
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("FAIL"))
    assert "capacity 1" in line and "topped_up" in line


def test_check_reports_a_nondeterministic_policy(tmp_path):
    src = tmp_path / "rnd.py"
    src.write_text(
        "import random\n"
        "from reclaim_ext.plugins.lru import LRU\n\n"
        "class R(LRU):\n"
        "    def evict(self, ctx, n):\n"
        "        return random.sample(self.last.members().tolist(), 1)\n"
    )
    r = invoke("check", str(src))
    assert r.exit_code == 1
    assert "not deterministic" in r.stdout or "drivers disagree" in r.stdout


def test_check_refuses_a_builtin_reclaim_policy():
    r = invoke("check", "classic")
    assert r.exit_code == 2 and "not a reclaim_ext policy" in r.stderr
