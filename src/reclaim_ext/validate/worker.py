"""The C replayer that runs inside the probe memcg, and its compilation with the system compiler.

The worker is C (not Python) because everything it touches is charged to the probe memcg: a C
worker costs ~55 pages of anon memory, a Python one thousands (docs/fidelity.md). It is compiled at
run time into a temporary directory with `$CC` (default `cc`, then `gcc`, `clang`).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from .errors import Unavailable

# usage: worker DATA|fd:N TRACE pread|mmap|anon SAMPLE_EVERY FLUSH_EVERY STAT_FILE USAGE_FILE
#  anon (the VM's swap runs): the pages are those of a private anonymous mapping as large as DATA
#  (DATA only gives the size); the first access to a page writes its index into it, later ones
#  read and check it; mincore() is the ground truth as for the file (a page swapped out and not in
#  the swap cache is not resident).
#  TRACE: uint32 page indices (already in the parent's page cache, mlocked, so reading it charges
#  nothing here). Per access: mincore() on the page (the hit/miss ground truth; mincore does not
#  touch LRU state), then the access (pread of 4 KiB, or an 8-byte load through a MAP_SHARED
#  mapping). Every FLUSH_EVERY accesses it reads STAT_FILE (memory.stat: a memcg rstat flush, so
#  the kernel's reclaim heuristics see fresh counters). Every SAMPLE_EVERY accesses: whole-file
#  mincore (resident data pages) and USAGE_FILE (the memcg's charge) -> calibration samples.
#  RECLAIM_EXT_INTERLEAVE=MASK in the environment (the VM's two-node runs): set_mempolicy
#  MPOL_INTERLEAVE over the nodes of MASK (3: nodes 0 and 1) before the replay.
#  RECLAIM_EXT_PREFERRED=NODE (the VM's global-path runs): set_mempolicy MPOL_PREFERRED on that
#  node before the replay; an allocation it cannot take there falls back along the zonelist.
#  RECLAIM_EXT_CACHESTAT=1 (pread only; the global-path runs): the per-access and sample checks use
#  cachestat(2) instead of mincore(2), whose temporary page (__get_free_page in sys_mincore) is
#  one page allocation per access under the task's mempolicy, counted in numa_hit/numa_miss.
#  RECLAIM_EXT_PIDS=FILE and RECLAIM_EXT_CGROUPS=PROCS0:PROCS1 (the VM's memory.low runs): FILE
#  holds one uint32 pid per access (0 or 1); before an access whose pid differs from the last
#  one, the worker writes 0 (itself) to that pid's cgroup.procs, so the page cache it reads next
#  is charged to that memcg (a page is charged to the current task's memcg when it is added to
#  the page cache). Its own memory stays where it was charged (cgroup v2 moves no charges).
WORKER_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#define PG 4096
#define CHUNK 16384
static uint32_t tbuf[CHUNK];
static unsigned char pbuf[PG] __attribute__((aligned(PG)));
static char fbuf[16384];
static uint32_t pidbuf[CHUNK];

static int move_to(const char *procs) {   /* this process into the cgroup of `procs` */
    int fd = open(procs, O_WRONLY);
    if (fd < 0) return -1;
    int ok = write(fd, "0", 1) == 1;
    close(fd); return ok ? 0 : -1;
}

static long long io_read_bytes(void) {
    FILE *f = fopen("/proc/self/io", "r"); char line[256]; long long v = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) if (sscanf(line, "read_bytes: %lld", &v) == 1) break;
    fclose(f); return v;
}

struct cs_range { uint64_t off, len; };
struct cs_stat { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; };
static long cached(int fd, long first, long n) {   /* cachestat(2): page-cache pages of the range, no allocation */
    struct cs_range r = { (uint64_t)first * PG, (uint64_t)n * PG }; struct cs_stat c;
    if (syscall(451 /* __NR_cachestat */, fd, &r, &c, 0) != 0) { perror("cachestat"); exit(1); }
    return (long)c.nr_cache;
}

static long long read_ll(int fd) {
    char b[64]; ssize_t n = pread(fd, b, sizeof b - 1, 0);
    if (n <= 0) return -1;
    b[n] = 0; return atoll(b);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "swapon") == 0) {  /* worker swapon DEVICE PRIO: the VM guest's swapon with a
                                                            priority (busybox's swapon has no -p) */
        if (syscall(SYS_swapon, argv[2], 0x8000 /* SWAP_FLAG_PREFER */ | (atoi(argv[3]) & 0x7fff)) != 0) {
            perror("swapon"); return 1;
        }
        return 0;
    }
    if (argc < 8) { fprintf(stderr, "usage: worker DATA TRACE MODE SAMPLE FLUSH STAT USAGE\n"); return 2; }
    const char *il = getenv("RECLAIM_EXT_INTERLEAVE");  /* a node mask: MPOL_INTERLEAVE over those nodes */
    if (il && *il) {
        unsigned long mask = strtoul(il, NULL, 0);
        if (syscall(SYS_set_mempolicy, 3 /* MPOL_INTERLEAVE */, &mask, 8 * sizeof mask) != 0) {
            perror("set_mempolicy"); return 1;
        }
    }
    const char *pref = getenv("RECLAIM_EXT_PREFERRED");  /* a node: MPOL_PREFERRED on it (falls back by the zonelist) */
    if (pref && *pref) {
        unsigned long mask = 1UL << strtoul(pref, NULL, 0);
        if (syscall(SYS_set_mempolicy, 1 /* MPOL_PREFERRED */, &mask, 8 * sizeof mask) != 0) {
            perror("set_mempolicy"); return 1;
        }
    }
    const char *pids_path = getenv("RECLAIM_EXT_PIDS"), *cgs = getenv("RECLAIM_EXT_CGROUPS");
    char procs[2][512]; int pfd = -1; long cur = -1;
    if (pids_path && *pids_path) {
        const char *colon = cgs ? strchr(cgs, ':') : NULL;
        if (!colon || colon - cgs >= 511 || strlen(colon + 1) >= 511) {
            fprintf(stderr, "RECLAIM_EXT_CGROUPS: not PROCS0:PROCS1\n"); return 2;
        }
        memcpy(procs[0], cgs, colon - cgs); procs[0][colon - cgs] = 0; strcpy(procs[1], colon + 1);
        if ((pfd = open(pids_path, O_RDONLY)) < 0) { perror("open pids"); return 1; }
    }
    int mmap_mode = strcmp(argv[3], "mmap") == 0, anon_mode = strcmp(argv[3], "anon") == 0;
    const char *cs_env = getenv("RECLAIM_EXT_CACHESTAT");
    int use_cs = cs_env && *cs_env == '1' && !mmap_mode && !anon_mode;
    long sample_every = atol(argv[4]), flush_every = atol(argv[5]);
    int dfd = strncmp(argv[1], "fd:", 3) == 0 ? atoi(argv[1] + 3) : open(argv[1], O_RDONLY);
    int tfd = open(argv[2], O_RDONLY);
    int flush_fd = flush_every > 0 ? open(argv[6], O_RDONLY) : -1;
    int usage_fd = open(argv[7], O_RDONLY);
    if (dfd < 0 || tfd < 0 || usage_fd < 0 || (flush_every > 0 && flush_fd < 0)) { perror("open"); return 1; }
    struct stat st;
    fstat(dfd, &st); long npages = st.st_size / PG;
    fstat(tfd, &st); long nacc = st.st_size / 4;
    if (!mmap_mode) posix_fadvise(dfd, 0, 0, POSIX_FADV_RANDOM);  /* 1-page reads, order-0 folios */
    unsigned char *map = anon_mode ? mmap(NULL, npages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                                   : mmap(NULL, npages * PG, PROT_READ, MAP_SHARED, dfd, 0);
    if (map == MAP_FAILED) { perror("mmap"); return 1; }
    uint8_t *touched = calloc((npages + 7) / 8, 1);
    if (!touched) { perror("calloc"); return 1; }
    memset(touched, 0, (npages + 7) / 8);
    unsigned char *vec = calloc(npages, 1);
    uint8_t *miss = calloc((nacc + 7) / 8, 1);
    long nsmax = sample_every > 0 ? nacc / sample_every + 2 : 1, ns = 0;
    long *spos = calloc(nsmax, sizeof(long)), *sres = calloc(nsmax, sizeof(long));
    long long *susage = calloc(nsmax, sizeof(long long));
    if (!vec || !miss || !spos || !sres || !susage) { perror("calloc"); return 1; }
    /* fault in the anon memory up front, so it is charged before the first access */
    memset(vec, 0, npages); memset(miss, 0, (nacc + 7) / 8);
    memset(spos, 0, nsmax * sizeof(long)); memset(sres, 0, nsmax * sizeof(long));
    memset(susage, 0, nsmax * sizeof(long long));
    memset(pbuf, 0, PG); memset(fbuf, 0, sizeof fbuf); memset(pidbuf, 0, sizeof pidbuf);
    struct rusage ru0, ru1; struct timespec t0, t1;
    long long rb0 = io_read_bytes();
    getrusage(RUSAGE_SELF, &ru0); clock_gettime(CLOCK_MONOTONIC, &t0);
    long nmiss = 0, bad = 0, moves = 0; unsigned char v1;
    for (long base = 0; base < nacc; base += CHUNK) {
        long n = nacc - base < CHUNK ? nacc - base : CHUNK;
        if (pread(tfd, tbuf, n * 4, base * 4) != n * 4) { perror("trace"); return 1; }
        if (pfd >= 0 && pread(pfd, pidbuf, n * 4, base * 4) != n * 4) { perror("pids"); return 1; }
        for (long j = 0; j < n; j++) {
            long i = base + j;
            if (pfd >= 0 && pidbuf[j] != cur) {
                if (pidbuf[j] > 1 || move_to(procs[pidbuf[j]]) != 0) {
                    fprintf(stderr, "access %ld: cannot move to the memcg of pid %u\n", i, pidbuf[j]); return 1;
                }
                cur = pidbuf[j]; moves++;
            }
            if (flush_fd >= 0 && i % flush_every == 0)
                while (pread(flush_fd, fbuf, sizeof fbuf, 0) == sizeof fbuf) ;
            if (sample_every > 0 && i % sample_every == 0 && ns < nsmax) {
                long r = 0;
                if (use_cs) r = cached(dfd, 0, npages);
                else { mincore(map, npages * PG, vec); for (long p = 0; p < npages; p++) r += vec[p] & 1; }
                spos[ns] = i; sres[ns] = r; susage[ns++] = read_ll(usage_fd);
            }
            uint32_t p = tbuf[j]; off_t off = (off_t)p * PG;
            if (p >= npages) { fprintf(stderr, "page %u out of range\n", p); return 1; }
            if (use_cs) v1 = cached(dfd, p, 1) > 0; else mincore(map + off, PG, &v1);
            if (!(v1 & 1)) { miss[i >> 3] |= 1 << (i & 7); nmiss++; }
            if (anon_mode) {
                volatile uint64_t *q = (volatile uint64_t *)(map + off);
                if (!(touched[p >> 3] & (1 << (p & 7)))) { touched[p >> 3] |= 1 << (p & 7); *q = p; }
                else if (*q != p) bad++;
            }
            else if (mmap_mode) { if (*(volatile uint64_t *)(map + off) != p) bad++; }
            else { if (pread(dfd, pbuf, PG, off) != PG) { perror("pread"); return 1; }
                   if (*(uint64_t *)pbuf != p) bad++; }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1); getrusage(RUSAGE_SELF, &ru1);
    long long rb1 = io_read_bytes();
    const char *swaps = getenv("RECLAIM_EXT_SWAPS");  /* the swap devices' slots at the end of the replay, while
                                                         its pages are still swapped out (its exit frees them) */
    if (swaps && *swaps) {
        int in = open("/proc/swaps", O_RDONLY), o = open(swaps, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        char sb[4096]; ssize_t k;
        if (in < 0 || o < 0) { perror("RECLAIM_EXT_SWAPS"); return 1; }
        while ((k = read(in, sb, sizeof sb)) > 0) if (write(o, sb, k) != k) { perror("write swaps"); return 1; }
        close(in); close(o);
    }
    mincore(map, npages * PG, vec); long rend = 0;
    for (long p = 0; p < npages; p++) rend += vec[p] & 1;
    printf("accesses %ld\nmisses %ld\nbad %ld\nmajflt %ld\nminflt %ld\nread_bytes %lld\n",
           nacc, nmiss, bad, ru1.ru_majflt - ru0.ru_majflt, ru1.ru_minflt - ru0.ru_minflt, rb1 - rb0);
    printf("seconds %.6f\nresident_end %ld\nmoves %ld\nsamples",
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9, rend, moves);
    for (long s = 0; s < ns; s++) printf(" %ld:%ld:%lld", spos[s], sres[s], susage[s]);
    printf("\nbitmap ");
    for (long b = 0; b < (nacc + 7) / 8; b++) printf("%02x", miss[b]);
    printf("\n");
    return 0;
}
"""


def find_compiler() -> str:
    """The C compiler: $CC, else cc, gcc or clang on PATH (Unavailable if there is none)."""
    cands = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    for c in cands:
        path = shutil.which(c)
        if path:
            return path
    raise Unavailable(f"no C compiler found ({', '.join(cands)} not on PATH); the kernel replay compiles "
                      "a small C worker: install one (e.g. apt-get install gcc) or set CC")


def compile_worker(tmpdir: str, static: bool = False) -> str:
    """Compile the worker into tmpdir (linked statically for a VM guest with `static`); return the
    executable's path."""
    cc = find_compiler()
    src = os.path.join(tmpdir, "worker.c")
    exe = os.path.join(tmpdir, "worker-static" if static else "worker")
    with open(src, "w") as fh:
        fh.write(WORKER_C)
    p = subprocess.run([cc, *(["-static"] if static else []), "-O2", "-Wall", "-o", exe, src],
                       capture_output=True, text=True)
    if p.returncode != 0:
        if static:
            last = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise Unavailable(f"linking the guest's replay worker statically with {cc} failed: {last} "
                              "(the static C library is in libc6-dev: apt-get install libc6-dev)")
        first = (p.stderr.strip().splitlines() or ["(no output)"])[0]
        raise Unavailable(f"compiling the replay worker with {cc} failed: {first}")
    return exe


def parse_worker_output(text: str) -> dict:
    """The worker's stdout as a dict: ints for counters, seconds as float, samples as
    [(position, resident data pages, memcg usage bytes)], bitmap as bytes (bit i: access i missed)."""
    out: dict = {}
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        if key == "samples":
            out["samples"] = [tuple(int(x) for x in s.split(":")) for s in rest.split()]
        elif key == "bitmap":
            out["bitmap"] = bytes.fromhex(rest.strip())
        elif key == "seconds":
            out[key] = float(rest)
        elif key:
            out[key] = int(rest)
    for need in ("accesses", "misses", "bad", "samples"):
        if need not in out:
            raise RuntimeError(f"replay worker: no {need!r} in its output")
    return out
