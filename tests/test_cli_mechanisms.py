"""The command line for mechanisms: `run --mechanism / --min-ttl-ms / --dump-lru-gen`, the
mechanism listing of `policies`, and `ablate` (baseline plus one run per variant on one trace,
in a process pool or in-process, with the same numbers either way)."""

from __future__ import annotations

import json

import pytest
from conftest import invoke, run_json
from test_cli import assert_bad_input

from reclaim_ext.api import RunConfig
from reclaim_ext.bench import ablate as ablate_mod
from reclaim_ext.core.engine import OutOfMemory
from reclaim_ext.core.ops import ACCESS_MECHANISMS, CORE_DEFAULT, CORE_MECHANISMS
from reclaim_ext.policies import BUILTIN

ZIPF = ["--workload", "zipf", "-p", "accesses=20000", "-p", "pages=2000", "--memory", "2MiB"]
# processes with anon memory, mmap'd and read() files and an executable: every mechanism has PTEs to
# look at (2 MiB = 512 pages for a footprint of about 1,700)
MIXED_PARAMS = {"accesses": 10000, "procs": 2, "anon_pages": 400, "file_pages": 400, "files": 2, "exec_pages": 100}
MIXED = ["--workload", "mixed", *[a for k, v in MIXED_PARAMS.items() for a in ("-p", f"{k}={v}")], "--memory", "2MiB"]
COST_WORK = ("ptes_walked", "rmap_walks", "lru_lock_ops", "atomic_updates")
MECHANISMS = ACCESS_MECHANISMS  # the policies' own; the core's (demotion, promotion) keep their defaults


def effective(access: dict) -> dict:
    """The full on/off map a run reports: these access mechanisms and the core's at their defaults."""
    return {**access, **{m: m in CORE_DEFAULT for m in CORE_MECHANISMS}}


def ablate_json(*args) -> dict:
    r = invoke("ablate", *args, "--json", "-")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def mglru_mixed():
    return run_json("--policy", "mglru", *MIXED)


@pytest.fixture(scope="module")
def mglru_ablation():
    return ablate_json("--policy", "mglru", *MIXED, "--jobs", "2")


# ---- bad input ---------------------------------------------------------------------------------


def test_mechanism_unknown_name():
    assert_bad_input(invoke("run", *ZIPF, "--policy", "mglru", "--mechanism", "+turbo"),
                     "mechanism", "turbo", "unknown")


def test_mechanism_without_sign():
    assert_bad_input(invoke("run", *ZIPF, "--policy", "mglru", "--mechanism", "-bloom,ptwalk"),
                     "mechanism", "ptwalk", "must start with +")


def test_mechanism_unsupported_by_classic():
    assert_bad_input(invoke("run", *ZIPF, "--policy", "classic", "--mechanism", "+lockfree"),
                     "mechanism", "classic", "lockfree")


def test_min_ttl_ms_only_for_mglru():
    assert_bad_input(invoke("run", *ZIPF, "--policy", "classic", "--min-ttl-ms", "1000"),
                     "min_ttl_ms", "only the mglru, mglru-6.12 policies")


def test_min_ttl_ms_negative():
    assert_bad_input(invoke("run", *ZIPF, "--policy", "mglru", "--min-ttl-ms", "-5"), "min_ttl_ms", "negative")


def test_min_ttl_ms_not_a_number():
    assert_bad_input(invoke("run", *ZIPF, "--policy", "mglru", "--min-ttl-ms", "soon"), "min-ttl-ms", "soon")


def test_dump_lru_gen_needs_mglru():
    assert_bad_input(invoke("run", *ZIPF, "--policy", "classic", "--dump-lru-gen"), "--dump-lru-gen", "mglru")


def test_ablate_bad_variant():
    assert_bad_input(invoke("ablate", *ZIPF, "--policy", "classic", "--variant", "+lockfree"),
                     "variant", "+lockfree", "classic")


def test_ablate_bad_mechanism():
    assert_bad_input(invoke("ablate", *ZIPF, "--policy", "mglru", "--mechanism", "bloom"), "mechanism", "bloom")


def test_ablate_bad_jobs():
    assert_bad_input(invoke("ablate", *ZIPF, "--jobs", "0"), "jobs", "0")


def test_ablate_unknown_policy():
    assert_bad_input(invoke("ablate", *ZIPF, "--policy", "fifo"), "policy", "fifo")


def test_ablate_baseline_out_of_memory_exits_3():
    r = invoke("ablate", "--workload", "zipf", "-p", "kind=anon", "-p", "pages=4000", "-p", "accesses=20000",
               "--memory", "2MiB", "--swap", "0", "--jobs", "1")
    assert r.exit_code == 3, r.output
    assert "baseline" in r.stderr and "out of memory" in r.stderr and "Traceback" not in r.output


# ---- run ---------------------------------------------------------------------------------------


def test_classic_with_ptwalk_walks_page_tables():
    r = run_json("--policy", "classic", "--mechanism", "+ptwalk", *MIXED)
    assert r["mechanisms"]["ptwalk"] and not r["mechanisms"]["lockfree"]
    assert r["cost"]["ptes_walked"] > 0


def test_classic_default_mechanisms_are_off():
    r = run_json("--policy", "classic", *ZIPF)
    assert r["mechanisms"] == effective(dict.fromkeys(MECHANISMS, False))
    assert "min_ttl_ms" not in r and "lru_gen" not in r


def test_mechanism_spec_switches_mglru_mechanisms_off():
    r = run_json("--policy", "mglru", "--mechanism", "-bloom,-lookaround", "--min-ttl-ms", "0", *ZIPF)
    assert r["mechanisms"] == effective({m: m not in ("bloom", "lookaround") for m in MECHANISMS})
    assert r["min_ttl_ms"] == 0


def test_mglru_min_ttl_ms_in_result():
    r = run_json("--policy", "mglru", "--min-ttl-ms", "0.5", "--workload", "zipf", "-p", "accesses=40000",
                 "-p", "pages=40000", "-p", "alpha=0.3", "--memory", "64MiB")
    assert r["min_ttl_ms"] == 0.5 and r["vmstat"]["pgscan_kswapd"] > 0


def test_mglru_min_ttl_ms_reaches_the_policy():
    """A min_ttl longer than the whole run: the thrashing protection OOM-kills (exit 3)."""
    r = invoke("run", "--policy", "mglru", "--min-ttl-ms", "1e9", *ZIPF)
    assert r.exit_code == 3, r.output
    assert "min_ttl" in r.stderr and "Traceback" not in r.output


def test_mglru_lru_gen_matches_list_sizes(mglru_mixed):
    r = mglru_mixed
    assert r["mechanisms"] == effective(dict.fromkeys(MECHANISMS, True))
    (state,) = r["lru_gen"]
    gens = state["generations"]
    assert gens and [g["seq"] for g in gens] == list(range(gens[0]["seq"], state["max_seq"] + 1))
    sizes = r["lru_sizes"]
    for t in ("anon", "file"):
        assert sum(g[t] for g in gens) == sizes[f"inactive_{t}"] + sizes[f"active_{t}"], t
    assert sum(g["anon"] + g["file"] for g in gens) == sum(sizes.values())
    assert sum(sizes.values()) > 0


def _lru_gen_lines(text: str, state: dict) -> None:
    lines = text.splitlines()
    assert lines[0].startswith("memcg") and lines[0].split()[1:] == [str(state["memcg_id"]), state["memcg_path"]]
    assert lines[1].startswith(" node") and lines[1].split()[1] == str(state["node"])
    emin = min(state["min_seq"].values())
    shown = [g for g in state["generations"] if g["seq"] >= emin]
    assert len(lines) == 2 + len(shown) and shown
    for line, g in zip(lines[2:], shown):
        assert [int(x) for x in line.split()] == [g["seq"], g["age_ms"], g["anon"], g["file"]]


def test_dump_lru_gen_with_json_goes_to_stderr(mglru_mixed):
    r = invoke("run", "--policy", "mglru", *MIXED, "--dump-lru-gen", "--json", "-")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)  # stdout stays one JSON document
    assert result["lru_gen"] == mglru_mixed["lru_gen"]
    _lru_gen_lines(r.stderr, result["lru_gen"][0])


def test_dump_lru_gen_after_summary(tmp_path):
    out = tmp_path / "r.json"
    r = invoke("run", "--policy", "mglru", *MIXED, "--dump-lru-gen", "--json", str(out))
    assert r.exit_code == 0, r.output
    result = json.loads(out.read_text())
    text = r.stdout
    assert "miss ratio" in text
    dump = text[text.index("\nmemcg") + 1:]
    _lru_gen_lines(dump, result["lru_gen"][0])


def test_summary_shows_mechanisms_and_work():
    r = invoke("run", "--policy", "classic", "--mechanism", "+ptwalk,+lookaround", *MIXED)
    assert r.exit_code == 0, r.output
    row = next(line for line in r.stdout.splitlines() if "mechanisms" in line)
    assert "ptwalk, lookaround" in row
    assert "PTEs walked" in r.stdout and "rmap walks" in r.stdout and "LRU-lock ops" in r.stdout
    assert "atomic flag updates" not in r.stdout  # zero for classic: not shown


def test_summary_shows_no_mechanisms_for_plain_classic():
    r = invoke("run", "--policy", "classic", *ZIPF)
    assert r.exit_code == 0, r.output
    row = next(line for line in r.stdout.splitlines() if "mechanisms" in line)
    assert "none" in row and "PTEs walked" not in r.stdout


def test_policies_lists_mechanisms():
    r = invoke("policies")
    assert r.exit_code == 0, r.output
    blocks: dict[str, list[str]] = {}
    builtin_part = r.stdout.split("\n\n")[0]  # the plug-ins are listed after a blank line
    assert "reclaim_ext plug-ins" in r.stdout and "s3fifo" in r.stdout
    for line in builtin_part.splitlines():
        if not line.startswith(" "):
            blocks[line.split()[0]] = []
        else:
            blocks[list(blocks)[-1]].append(line.strip())
    assert set(blocks) == set(BUILTIN)
    for name, cls in BUILTIN.items():
        info = dict(line.split(":", 1) for line in blocks[name])
        assert [m.strip() for m in info["mechanisms"].split(",")] == list(cls.supported_mechanisms + CORE_MECHANISMS)
        default = [m.strip() for m in info["default"].split(",")]
        assert default == list(cls.default_mechanisms + CORE_DEFAULT)
    assert "min-ttl-ms" in " ".join(blocks["mglru"]) and "min-ttl-ms" not in " ".join(blocks["classic"])


# ---- ablate ------------------------------------------------------------------------------------


def test_ablate_mglru_one_variant_per_mechanism(mglru_ablation):
    a = mglru_ablation
    assert (a["policy"], a["workload"], a["memory_pages"]) == ("mglru", "mixed", 512)
    assert [v["mechanisms"] for v in a["variants"]] == [f"-{m}" for m in MECHANISMS]
    assert a["baseline"]["effective"] == effective(dict.fromkeys(MECHANISMS, True))
    for m, v in zip(MECHANISMS, a["variants"]):
        assert v["effective"] == effective({x: x != m for x in MECHANISMS})
        assert v["error"] is None
        assert set(v["relative"]) == {k for k, _ in ablate_mod.METRICS}
        for k, rel in v["relative"].items():
            b, x = a["baseline"]["metrics"][k], v["metrics"][k]
            if b:
                assert rel == pytest.approx((x - b) / b * 100)
            else:
                assert rel == (0.0 if x == 0 else None)
    assert any(v["metrics"]["misses"] != a["baseline"]["metrics"]["misses"] for v in a["variants"])


def test_ablate_baseline_equals_plain_run(mglru_ablation, mglru_mixed):
    base = mglru_ablation["baseline"]
    assert base["metrics"]["misses"] == mglru_mixed["misses"]
    assert base["vmstat"] == mglru_mixed["vmstat"] and base["cost"] == mglru_mixed["cost"]
    expect = ablate_mod.metrics_of(mglru_mixed)
    assert {k: v for k, v in base["metrics"].items() if k != "wall_seconds"} == \
        {k: v for k, v in expect.items() if k != "wall_seconds"}


def _without_wall(a: dict) -> list[dict]:
    runs = [a["baseline"], *a["variants"]]
    return [{**r, "metrics": {k: v for k, v in r["metrics"].items() if k != "wall_seconds"}} for r in runs]


def test_ablate_jobs_do_not_change_the_numbers(mglru_ablation):
    serial = ablate_json("--policy", "mglru", *MIXED, "--jobs", "1")
    assert serial["jobs"] == 1 and mglru_ablation["jobs"] == 2
    assert _without_wall(serial) == _without_wall(mglru_ablation)


def test_ablate_classic_adds_mechanisms():
    a = ablate_json("--policy", "classic", *MIXED, "--jobs", "2")
    assert [v["mechanisms"] for v in a["variants"]] == list(BUILTIN["classic"].ablation_variants)
    assert a["baseline"]["metrics"]["ptes_walked"] == 0
    ptwalk = a["variants"][0]
    assert ptwalk["mechanisms"] == "+ptwalk" and ptwalk["metrics"]["ptes_walked"] > 0
    assert ptwalk["relative"]["ptes_walked"] is None  # a change from 0: no percentage


def test_ablate_variants_on_top_of_mechanism():
    a = ablate_json("--policy", "mglru", *ZIPF, "--mechanism", "-lockfree", "--variant", "-bloom",
                    "--variant", "+lockfree", "--jobs", "1")
    assert a["baseline"]["mechanisms"] == "-lockfree"
    assert a["baseline"]["effective"] == effective({m: m != "lockfree" for m in MECHANISMS})
    assert [v["effective"] for v in a["variants"]] == [
        effective({m: m not in ("lockfree", "bloom") for m in MECHANISMS}),
        effective(dict.fromkeys(MECHANISMS, True)),
    ]


def test_ablate_prints_a_table(tmp_path):
    out = tmp_path / "a.json"
    r = invoke("ablate", "--policy", "mglru", *ZIPF, "--variant", "-lookaround", "--jobs", "1", "--json", str(out))
    assert r.exit_code == 0, r.output
    a = json.loads(out.read_text())
    lines = r.stdout.splitlines()
    header = next(line for line in lines if line.startswith("variant"))
    for label in ("misses", "refaults", "modelled s", "pages scanned", "PTEs walked", "rmap walks",
                  "LRU-lock ops", "atomic updates", "wall s"):
        assert label in header
    base = next(line for line in lines if line.startswith("baseline"))
    assert f"{a['baseline']['metrics']['misses']:,}" in base and "%" not in base
    variant = next(line for line in lines if line.startswith("-lookaround"))
    assert f"{a['variants'][0]['metrics']['misses']:,}" in variant and "%" in variant


def test_ablate_variant_out_of_memory_is_a_row(monkeypatch):
    """A variant that runs out of memory is reported, not fatal (the others still compare)."""
    real_run = ablate_mod.run

    def run(cfg, trace=None):
        if cfg.mechanisms == "-bloom":
            raise OutOfMemory("out of memory: 512 pages in use, nothing reclaimable")
        return real_run(cfg, trace=trace)

    monkeypatch.setattr(ablate_mod, "run", run)
    cfg = RunConfig(policy="mglru", workload="zipf", workload_params={"accesses": 20000, "pages": 2000}, memory=512)
    a = ablate_mod.ablate(cfg, variants=["-bloom", "-lockfree"], jobs=1)
    oom, ok = a["variants"]
    assert oom["error"].startswith("out of memory") and oom["metrics"] is None and oom["relative"] is None
    assert oom["effective"]["bloom"] is False
    assert ok["error"] is None and ok["metrics"]["misses"] > 0
    text = ablate_mod.format_plain(a)
    row = next(line for line in text.splitlines() if line.startswith("-bloom"))
    assert "out of memory" in row
