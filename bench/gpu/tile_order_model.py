#!/usr/bin/env python3
"""List-scheduling model of the masked forward's tile order (bench/NOTES.md "Hopper forward" step 27).

Each SM takes the next tile in numbering order when it finishes one (the dynamic schedule; one CTA per tile
behaves alike); a causal tile costs its key blocks plus `overhead` blocks. Prints the makespan of the ideal
(perfect balance), of the m-block-fastest numbering (heaviest first per head) and of FA3's L2 sections
(libflash/cuda/tile_order.h) on the FA3 grid (16k tokens, hidden 2048). No GPU needed.
Usage: tile_order_model.py [--sms 132] [--overhead 1.0]
"""
import argparse
import heapq


def makespan(weights, sms):
    free = [0.0] * sms
    for w in weights:
        heapq.heappush(free, heapq.heappop(free) + w)
    return max(free)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sms", type=int, default=132)
    ap.add_argument("--overhead", type=float, default=1.0)
    a = ap.parse_args()
    print("| d | block_m x block_n | seqlen | pairs/section | m fastest / ideal | sections / ideal | gain |")
    print("|---|---|---|---|---|---|---|")
    for d, bm, bn in [(64, 128, 128), (64, 192, 128), (128, 128, 128), (256, 128, 128), (256, 128, 80)]:
        for s in [512, 1024, 2048, 4096, 8192, 16384]:
            pairs, mb = (16384 // s) * (2048 // d), (s + bm - 1) // bm
            w = [((mb - m) * bm + bn - 1) // bn + a.overhead for m in range(mb)]  # heaviest first
            sec = max(1, min(pairs, (32 << 20) // (s * 2 * d * 2)))
            ideal = sum(w) * pairs / a.sms
            cur = makespan([x for _ in range(pairs) for x in w], a.sms)
            new = []
            for s0 in range(0, pairs, sec):
                new += [x for x in w for _ in range(min(sec, pairs - s0))]
            new = makespan(new, a.sms)
            print(f"| {d} | {bm} x {bn} | {s} | {sec} | {ideal / cur:.3f} | {ideal / new:.3f} | {cur / new:.3f} |")


if __name__ == "__main__":
    main()
