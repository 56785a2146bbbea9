#!/usr/bin/env python3
"""The FLASH_SM90_TUNE_* flags that copy one row of the Hopper tile table (libflash/cuda/hopper/fwd_sm90_config.h).

A tile A/B (scripts/ab_tune.sh) times a row rebuilt from command-line macros; a copy transcribed by hand can drop or
mistype a field, and then the A/B measures another kernel than the one it names. This prints the copy from the table
itself, with the fields an A/B changes given as MACRO=VALUE (each macro is defined once):

    scripts/ab_tune.sh "ctl=$(python3 scripts/sm90_tune_flags.py 64 0 0)" \
        "st3=$(python3 scripts/sm90_tune_flags.py 64 0 0 ST=3)"    # d64 non-causal row 0, and with 3 K/V stages

The tuning row serves every length and compiles softcap kernels (min_sk and softcap are not copied).
test/native_host.test.ts compiles test/native/tune_row.cpp with each row's flags against the table.
Usage: sm90_tune_flags.py D MASK ALT [MACRO=VALUE ...] [--dv DV] | --list
"""
import argparse
import pathlib
import re
import sys

HEADER = pathlib.Path(__file__).resolve().parent.parent / "libflash/cuda/hopper/fwd_sm90_config.h"
# Sm90Tile's fields in declaration order; None: not a tuning macro (d, dv and masked pick the row; min_sk, softcap fixed)
FIELDS = [("d", "D"), ("dv", "DV"), ("masked", None), ("consumers", "CONS"), ("block_n", "BN"), ("stages", "ST"),
          ("overlap", "OV"), ("pingpong", "PP"), ("persistent", "PS"), ("dynamic", "DY"), ("reg_producer", "RP"),
          ("reg_consumer", "RC"), ("desc_base", "DB"), ("q_slots", "QS"), ("persist_max_n", "PMN"), ("tma_o", "TO"),
          ("min_sk", None), ("softcap", None), ("dense", "DE"), ("uniform", "UN"), ("pair_o", "PO"), ("stagger", "SG"),
          ("spec", "SP")]


def rows():
    text = HEADER.read_text()
    body = text[text.index("constexpr Sm90Tile kSm90Tiles[] = {"):]
    body = body[:body.index("\n};")]
    out = []
    for m in re.finditer(r"^\s*\{([^{}]*)\},", body, re.M):
        vals = [v.strip() for v in m.group(1).split(",")]
        if len(vals) != len(FIELDS):
            sys.exit(f"{HEADER.name}: a row with {len(vals)} values, Sm90Tile has {len(FIELDS)}: {m.group(0).strip()}")
        out.append({name: int({"true": "1", "false": "0"}.get(v, v)) for (name, _), v in zip(FIELDS, vals)})
    return out


def pick(d, dv, mask, alt):
    found = [r for r in rows() if r["d"] == d and r["dv"] == dv and r["masked"] == mask]
    if alt >= len(found):
        sys.exit(f"no row {alt} for d {d}, dv {dv}, mask {mask} ({len(found)} rows)")
    return found[alt]


def flags(row, overrides):
    vals = {macro: row[name] for name, macro in FIELDS if macro}
    for o in overrides:
        macro, _, v = o.partition("=")
        if macro not in vals or macro in ("D", "DV") or not re.fullmatch(r"-?\d+", v):
            sys.exit(f"override {o!r}: expected MACRO=INT, MACRO one of {' '.join(list(vals)[2:])}")
        vals[macro] = int(v)
    return " ".join(f"-DFLASH_SM90_TUNE_{macro}={v}" for macro, v in vals.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("key", nargs="*", help="D MASK ALT, then MACRO=VALUE overrides")
    ap.add_argument("--dv", type=int)
    ap.add_argument("--list", action="store_true", help="every row as 'd dv mask alt'")
    a = ap.parse_args()
    if a.list:
        seen = {}
        for r in rows():
            k = (r["d"], r["dv"], r["masked"])
            print(*k, seen.get(k, 0))
            seen[k] = seen.get(k, 0) + 1
        return
    if len(a.key) < 3 or not all(k.isdigit() for k in a.key[:3]):
        ap.error("expected D MASK ALT")
    d, mask, alt = (int(k) for k in a.key[:3])
    print(flags(pick(d, a.dv if a.dv is not None else d, mask, alt), a.key[3:]))


if __name__ == "__main__":
    main()
