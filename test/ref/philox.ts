// Independent implementation of the dropout mask of include/flash.h ("Dropout mask"): Philox-4x32-10 plus
// the counter/key layout and the 16-bit threshold. Written from the header's text, not from any backend, so
// that a mismatch between this file and a backend points at one of them rather than at a shared bug.

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two u32s, exact in doubles: split `a` into 16-bit halves so every
 *  partial product stays below 2^53. (The low half is Math.imul.) */
export function mulhi32(a: number, b: number): number {
  const ah = a >>> 16;
  const al = a & 0xffff;
  const t = al * b; // < 2^48
  const mid = ah * b + Math.floor(t / 65536); // < 2^49; a*b = mid*2^16 + (t mod 2^16)
  return Math.floor(mid / 65536) >>> 0;
}

/** Philox-4x32-10 of the header: 10 rounds, key bumped between rounds (not after the last). */
export function philox4x32_10(
  counter: readonly [number, number, number, number],
  key: readonly [number, number],
): [number, number, number, number] {
  let c0 = counter[0] >>> 0, c1 = counter[1] >>> 0, c2 = counter[2] >>> 0, c3 = counter[3] >>> 0;
  let k0 = key[0] >>> 0, k1 = key[1] >>> 0;
  for (let round = 0; round < 10; round++) {
    const hi0 = mulhi32(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    if (round < 9) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
  }
  return [c0, c1, c2, c3];
}

const U64 = (1n << 64n) - 1n;

/** Drop threshold: dropped iff u16 < threshold. p is the ABI's float field, so it is rounded to f32 first;
 *  p*65536 is then exact and +0.5 / floor happen in double, as the C expression does. */
export function dropoutThreshold(p: number): number {
  return Math.min(65535, Math.floor(Math.fround(p) * 65536 + 0.5));
}

/** The factor applied to kept probabilities: 1/(1-p) with p as the f32 the caller stored. */
export function dropoutScale(p: number): number {
  return 1 / (1 - Math.fround(p));
}

/** Philox key (seed_lo, seed_hi) and counter words 2,3 (n_lo, n_hi) for one (batch, head). */
function streamWords(seed: bigint, offset: bigint, h: number, batch: number, head: number): [number, number, number, number] {
  const s = BigInt.asUintN(64, seed);
  const n = (BigInt.asUintN(64, offset) + BigInt(batch) * BigInt(h) + BigInt(head)) & U64;
  return [Number(s & 0xffffffffn), Number(s >> 32n), Number(n & 0xffffffffn), Number(n >> 32n)];
}

function u16Of(x: readonly number[], col: number): number {
  return (x[(col & 7) >> 1]! >>> (16 * (col & 1))) & 0xffff;
}

/** True when the header's mask KEEPS element (row, col) of (batch, head). */
export function dropoutKeep(
  seed: bigint, offset: bigint, h: number, batch: number, head: number, row: number, col: number, p: number,
): boolean {
  const [k0, k1, n0, n1] = streamWords(seed, offset, h, batch, head);
  const x = philox4x32_10([col >>> 3, row >>> 0, n0, n1], [k0, k1]);
  return u16Of(x, col) >= dropoutThreshold(p);
}

/** Keep mask of one query row for columns [0, sk): 1 = kept. One Philox call per 8 columns. */
export function dropoutKeepRow(
  seed: bigint, offset: bigint, h: number, batch: number, head: number, row: number, sk: number, p: number,
): Uint8Array {
  const [k0, k1, n0, n1] = streamWords(seed, offset, h, batch, head);
  const thr = dropoutThreshold(p);
  const out = new Uint8Array(sk);
  for (let c8 = 0; c8 * 8 < sk; c8++) {
    const x = philox4x32_10([c8, row >>> 0, n0, n1], [k0, k1]);
    for (let c = c8 * 8; c < Math.min(sk, c8 * 8 + 8); c++) out[c] = u16Of(x, c) >= thr ? 1 : 0;
  }
  return out;
}
