// Device utilities: a machine without CUDA reports 0 devices and refuses device calls cleanly; on the GPU
// machine, memory, copies, streams and events round-trip.
import { describe, expect, test } from "bun:test";
import {
  Event, FlashInvalidArgumentError, FlashUnsupportedError, MemcpyKind, Stream, Tensor, deviceCount, deviceFree,
  deviceMalloc, deviceProperties, flashAttn, hasCuda, memcpy, memset, synchronize, synchronizeSync, buildInfo,
} from "../ts/index.ts";

const cuda = hasCuda();

test("tensors on different devices are refused before any call", () => {
  const q = Tensor.from(new Array(16).fill(0), [1, 1, 2, 8], "float16", "cpu");
  const k = Tensor.fromDevicePtr(0x7f00_0000_0000, "float16", [1, 1, 2, 8], { device: 0 });
  expect(() => flashAttn(q, k, k)).toThrow(FlashInvalidArgumentError);
  expect(() => flashAttn(q, k, k)).toThrow(/k is on device 0 but the other tensors are on cpu/);
});

describe.skipIf(cuda)("without a CUDA device", () => {
  test("the device count is 0, not an error", () => {
    expect(deviceCount()).toBe(0);
  });
  test("device calls fail with FlashUnsupportedError", () => {
    expect(() => deviceMalloc(16)).toThrow(FlashUnsupportedError);
    expect(() => new Stream()).toThrow(FlashUnsupportedError);
    expect(() => deviceProperties(0)).toThrow(FlashUnsupportedError);
  });
});

describe.skipIf(!cuda)("with a CUDA device", () => {
  test("properties", () => {
    const p = deviceProperties(0);
    expect(p.name.length).toBeGreaterThan(0);
    expect(p.major).toBeGreaterThanOrEqual(8);
    expect(p.multiprocessorCount).toBeGreaterThan(0);
    expect(p.totalGlobalMem).toBeGreaterThan(1e9);
    expect(buildInfo().backends).toContain("cuda");
  });

  test("malloc, memset, memcpy both ways, free", () => {
    const n = 1 << 20;
    const a = deviceMalloc(n), b = deviceMalloc(n);
    const host = new Uint8Array(new ArrayBuffer(n));
    for (let i = 0; i < n; i++) host[i] = i * 7;
    memcpy(a, host, n, MemcpyKind.HostToDevice);
    memcpy(b, a, n, MemcpyKind.DeviceToDevice);
    const back = new Uint8Array(new ArrayBuffer(n));
    memcpy(back, b, n, MemcpyKind.DeviceToHost);
    expect(back).toEqual(host);
    memset(b, 0xab, 1000);
    memcpy(back, b, n, MemcpyKind.Default);
    expect(back[999]).toBe(0xab);
    expect(back[1000]).toBe(host[1000]);
    deviceFree(a);
    deviceFree(b);
  });

  test("streams, events, async synchronize", async () => {
    using s = new Stream();
    using e0 = new Event(), e1 = new Event();
    const n = 256 << 20;
    const p = deviceMalloc(n);
    e0.record(s);
    for (let i = 0; i < 8; i++) memset(p, i, n, s);
    e1.record(s);
    await synchronize(s);
    expect(e1.query()).toBe(true);
    expect(e0.elapsedMs(e1)).toBeGreaterThan(0);
    synchronizeSync(s);
    deviceFree(p);
    s.dispose();
    expect(() => s.handle).toThrow(/after dispose/);
  });

  test("device tensors round-trip through fp16/bf16", () => {
    for (const dt of ["float16", "bfloat16", "float32"] as const) {
      using t = Tensor.from([1, -2.5, 0.125, 65504 / 2], [4], dt, 0);
      expect(Array.from(t.toFloat32Array())).toEqual([1, -2.5, 0.125, dt === "bfloat16" ? 32768 : 32752]);
    }
  });

  test("FLASH_CHECK_POINTERS=1 refuses host memory passed as device memory", () => {
    const code = `
      import { Tensor, flashAttn } from "${import.meta.dir}/../ts/index.ts";
      const q = Tensor.from(new Array(16).fill(0), [1, 1, 2, 8], "float16", "cpu");
      const fake = Tensor.fromDevicePtr(q.ptr, "float16", [1, 1, 2, 8], { device: 0 });
      try { flashAttn(fake, fake, fake); console.log("no error"); } catch (e) { console.log(e.message); }`;
    const r = Bun.spawnSync([process.execPath, "-e", code], { env: { ...process.env, FLASH_CHECK_POINTERS: "1" } });
    expect(r.stdout.toString()).toMatch(/q_ptr=0x[0-9a-f]+ is not memory of CUDA device 0/);
  });
});
