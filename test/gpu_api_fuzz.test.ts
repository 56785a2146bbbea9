// test/api_fuzz.test.ts's draws with CUDA device buffers: the CUDA backend's own checks (dtype, alignment, what each
// kernel takes) under the same bad and odd fields, no kernel fault (the device synchronizes clean at the end), and a
// refused call writes nothing. Index arrays get random contents only with FLASH_CHECK_INDICES=1 (else the library,
// like FA2, does not read device index arrays on the host). Skipped without CUDA.
import { afterAll, expect, test } from "bun:test";
import { deviceFree, deviceMalloc, deviceSynchronize, hasCuda, memcpy, MemcpyKind, memset, Status } from "../ts/index.ts";
import { bytesOf, fuzz, NAMES, OUTS, type Entry, type Idx, type Mem, type Name } from "./fuzz/params.ts";

// Device buffers of the bf16 problem; outputs poisoned with all-ones bytes (NaN), read back to check.
function deviceMem(): Mem & { free(): void } {
  const bufs = new Map<Name, number | bigint>();
  for (const n of NAMES) bufs.set(n, deviceMalloc(bytesOf(n, 2)));
  const idx = new Map<Idx, number | bigint>();
  const ws = deviceMalloc(16 << 20);
  const host = new Uint8Array(new ArrayBuffer(8192));
  const staged = new Int32Array(new ArrayBuffer(64));
  return {
    deviceType: 2, dtype: 2, checksIndices: process.env.FLASH_CHECK_INDICES === "1",
    addr: (n) => bufs.get(n)!,
    idx(n, v) {
      let a = idx.get(n);
      if (a === undefined) idx.set(n, (a = deviceMalloc(64)));
      staged.fill(0).set(v);
      memcpy(a, staged, 64, MemcpyKind.HostToDevice);
      return a;
    },
    reset() {
      for (const [n, p] of bufs) memset(p, OUTS.includes(n) ? 0xff : 0x3c, bytesOf(n, 2)); // 0x3c3c: 0.0115 in bf16
    },
    untouched(n) {
      const bytes = bytesOf(n, 2);
      memcpy(host, bufs.get(n)!, bytes, MemcpyKind.DeviceToHost);
      return host.subarray(0, bytes).every((x) => x === 0xff);
    },
    workspace: (bytes) => (bytes <= 16 << 20 ? ws : null),
    free() {
      for (const p of [...bufs.values(), ...idx.values(), ws]) deviceFree(p);
    },
  };
}

const mem = hasCuda() ? deviceMem() : null;
afterAll(() => mem?.free());
for (const [entry, seed] of [["flash_fwd", 21], ["flash_fwd_kvcache", 22], ["flash_bwd", 23]] as [Entry, number][]) {
  test.skipIf(!hasCuda())(`${entry} on CUDA: 1500 random draws of bad and odd fields, no fault, refused calls write nothing`, () => {
    const { failures, counts } = fuzz(mem!, entry, seed, 1500);
    deviceSynchronize(); // throws on a kernel fault left by any valid draw
    expect(failures.slice(0, 10)).toEqual([]);
    expect(counts.get(0) ?? 0).toBeGreaterThan(30);
    expect(counts.get(Status.INVALID_ARGUMENT) ?? 0).toBeGreaterThan(300);
  }, 120_000);
}
