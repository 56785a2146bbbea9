#!/usr/bin/env python3
"""List-scheduling model of the masked forward's tile order (bench/NOTES.md "Hopper forward" step 27).

Each SM takes the next tile in numbering order when it finishes one (the dynamic schedule; one CTA per tile
behaves alike); a causal tile costs its key blocks plus `overhead` blocks. Prints the makespan of the ideal
(perfect balance), of the m-block-fastest numbering (heaviest first per head) and of FA3's L2 sections
(libflash/cuda/tile_order.h) on the FA3 grid (16k tokens, hidden 2048). No GPU needed.
--claims: the Hopper kernel's claim point instead (step 49-50): an SM claims its next tile from the counter while
it still holds committed work, and the earlier it commits, the worse the counter balances unequal tiles. An SM
claims once its committed work, less the last `q` tiles it claimed, is down to `x` key blocks: q 2 / x 0 = claim at
the consumers' start of the tile before (branch nospill's first version), q 1 / x S = at the load thread's start
of the tile before (main), q 0 / x S = once the tile before has all its loads issued (FLASH_SM90_CLAIM_LATE).
--l2: K/V bytes from DRAM per L2 section size: the same schedule's block reads in time order through an LRU cache
of --l2-mb (Q and O pass through it too); the question of bench/NOTES.md "L2 sections at causal 512-2k". The real
L2 is neither one LRU nor one partition, so read the ratios between section sizes, not the absolute figures.
Usage: tile_order_model.py [--sms 132] [--overhead 1.0] [--claims | --l2 [--l2-mb 50]]
"""
import argparse
import heapq
from collections import OrderedDict


def makespan(weights, sms):
    free = [0.0] * sms
    for w in weights:
        heapq.heappush(free, heapq.heappop(free) + w)
    return max(free)


def makespan_claims(weights, sms, q, x):
    """Each SM starts on its first tile (blockIdx.x) and claims the next when its committed work less its last q
    claims is down to x blocks; tiles go out in claim order."""
    it = iter(weights)
    end, recent, heap = [0.0] * sms, [[] for _ in range(sms)], []

    def take(i, t, w):
        end[i] = max(end[i], t) + w
        recent[i] = (recent[i] + [w])[-q:] if q else []
        heapq.heappush(heap, (max(t, end[i] - sum(recent[i]) - x), i))

    for i in range(sms):
        w = next(it, None)
        if w is None:
            break
        take(i, 0.0, w)
    for w in it:
        t, i = heapq.heappop(heap)
        take(i, t, w)
    return max(end)


def section_pairs(pairs, s, d, m_blocks, slots, mb=8, waves=2, max_mb=32, equal=True, short_sk=1536):
    """libflash/cuda/tile_order.h's l2_section_pairs (rule = true, the Hopper path) for d = dv, no GQA sharing; the
    defaults are its shipped macros, the keywords its FLASH_L2_SECTION_{MB, WAVES, MAX_MB, EQUAL, SHORT_SK}. The
    order before session 40 (still the mma.sync path's, rule = false): mb=32, waves=0, equal=False, short_sk=0."""
    kv = s * 2 * d * 2
    short = short_sk <= 0 or s <= short_sk
    by_waves = ((waves if short else 0) * slots + m_blocks - 1) // m_blocks
    by_bytes = ((mb if short else max_mb) << 20) // kv
    sec = max(1, min(pairs, min(max(by_bytes, by_waves), (max_mb << 20) // kv)))
    if not equal:
        return sec
    n = -(-max(1, pairs) // sec)
    return -(-max(1, pairs) // n)


def section_order(w, pairs, sec):
    out = []
    for s0 in range(0, pairs, sec):
        out += [x for x in w for _ in range(min(sec, pairs - s0))]
    return out


def claims_table(a):
    # The persistent dynamic causal rows of hopper/fwd_sm90_config.h: (d, block_m, block_n, stages, seqlens).
    rows = [(64, 128, 128, 2, [512, 1024]), (64, 192, 128, 2, [2048, 4096, 8192, 16384]),
            (128, 128, 128, 2, [512, 1024, 2048, 4096, 8192, 16384]), (256, 128, 128, 1, [512, 1024, 2048])]
    print(f"Makespan / ideal (overhead {a.overhead} blocks a tile, {a.sms} SMs, L2 sections, causal FA3 grid)")
    print("| d | block_m x block_n | stages | seqlen | tiles / SM | early (q2 x0) | main (q1 xS) | late (q0 xS) |"
          " late / main |")
    print("|---|---|---|---|---|---|---|---|---|")
    for d, bm, bn, st, seqlens in rows:
        for s in seqlens:
            pairs, mb = (16384 // s) * (2048 // d), (s + bm - 1) // bm
            w = [((mb - m) * bm + bn - 1) // bn + a.overhead for m in range(mb)]
            sec = section_pairs(pairs, s, d, mb, a.sms)
            order = section_order(w, pairs, sec)
            ideal = sum(order) / a.sms
            r = [makespan_claims(order, a.sms, q, x) for q, x in ((2, 0), (1, st), (0, st))]
            print(f"| {d} | {bm} x {bn} | {st} | {s} | {len(order) / a.sms:.1f} | {ideal / r[0]:.3f} | "
                  f"{ideal / r[1]:.3f} | {ideal / r[2]:.3f} | {r[1] / r[2]:.3f} |")


def kv_dram_ratio(d, s, bm, bn, sec_mb, a):
    """K/V bytes read from DRAM / unique K/V bytes for the causal FA3-grid cell (d, s) with sections of sec_mb."""
    pairs, mb = (16384 // s) * (2048 // d), (s + bm - 1) // bm
    nblk = [((mb - m) * bm + bn - 1) // bn for m in range(mb)]  # heaviest first
    sec = section_pairs(pairs, s, d, mb, a.sms, mb=sec_mb, waves=0, max_mb=sec_mb, equal=False, short_sk=0)
    free, events = [0.0] * a.sms, []
    for s0 in range(0, pairs, sec):
        for n in nblk:
            for pair in range(s0, min(pairs, s0 + sec)):
                t = heapq.heappop(free)
                events.append((t, ("q", pair, n)))
                # key blocks last to first (the kernel's order), one block-time apart after the tile's start
                events += [(t + a.overhead / 2 + j, ("kv", pair, n - 1 - j)) for j in range(n)]
                events.append((t + n + a.overhead, ("o", pair, n)))
                heapq.heappush(free, t + n + a.overhead)
    events.sort(key=lambda e: e[0])
    kv_bytes, qo_bytes = bn * d * 2 * 2, bm * d * 2
    lru, used, cap, dram = OrderedDict(), 0, a.l2_mb << 20, 0
    for _, key in events:
        if key in lru:
            lru.move_to_end(key)
            continue
        size = kv_bytes if key[0] == "kv" else qo_bytes
        if key[0] == "kv":
            dram += size
        lru[key] = size
        used += size
        while used > cap:
            used -= lru.popitem(last=False)[1]
    unique = pairs * ((s + bn - 1) // bn) * kv_bytes
    return dram / unique


def l2_table(a):
    rows = [(64, 128, 128, [512, 1024]), (64, 192, 128, [2048]), (128, 128, 128, [512, 1024, 2048]),
            (256, 128, 128, [512, 1024, 2048])]
    sizes = [8, 16, 32, 48]
    print(f"K/V DRAM bytes / unique K/V bytes (LRU of {a.l2_mb} MB, {a.sms} SMs, causal FA3 grid)")
    print("| d | block_m x block_n | seqlen | " + " | ".join(f"sections {m} MB" for m in sizes) + " |")
    print("|---|---|---|" + "---|" * len(sizes))
    for d, bm, bn, seqlens in rows:
        for s in seqlens:
            r = [kv_dram_ratio(d, s, bm, bn, m, a) for m in sizes]
            print(f"| {d} | {bm} x {bn} | {s} | " + " | ".join(f"{x:.2f}" for x in r) + " |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sms", type=int, default=132)
    ap.add_argument("--overhead", type=float, default=1.0)
    ap.add_argument("--claims", action="store_true")
    ap.add_argument("--l2", action="store_true")
    ap.add_argument("--l2-mb", type=int, default=50)
    a = ap.parse_args()
    if a.claims:
        return claims_table(a)
    if a.l2:
        return l2_table(a)
    print("| d | block_m x block_n | seqlen | pairs/section | m fastest / ideal | sections / ideal | gain |")
    print("|---|---|---|---|---|---|---|")
    for d, bm, bn in [(64, 128, 128), (64, 192, 128), (128, 128, 128), (256, 128, 128), (256, 128, 80)]:
        for s in [512, 1024, 2048, 4096, 8192, 16384]:
            pairs, mb = (16384 // s) * (2048 // d), (s + bm - 1) // bm
            w = [((mb - m) * bm + bn - 1) // bn + a.overhead for m in range(mb)]  # heaviest first
            sec = section_pairs(pairs, s, d, mb, a.sms)
            ideal = sum(w) * pairs / a.sms
            cur = makespan([x for _ in range(pairs) for x in w], a.sms)
            new = makespan(section_order(w, pairs, sec), a.sms)
            print(f"| {d} | {bm} x {bn} | {s} | {sec} | {ideal / cur:.3f} | {ideal / new:.3f} | {cur / new:.3f} |")


if __name__ == "__main__":
    main()
