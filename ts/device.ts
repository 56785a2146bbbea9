// CUDA devices, memory, streams and events through libflash's own checked wrappers, so a Bun program
// needs nothing else. Without CUDA (no driver or a CPU-only build) deviceCount() is 0.
import type { Pointer } from "bun:ffi";
import { FlashDisposedError, Status, invalid } from "./errors.ts";
import { check, library } from "./library.ts";
import type { DevicePtr } from "./params.ts";

// Out-parameter slots for the C calls: one ArrayBuffer-backed array reused by every call.
const out64 = new BigUint64Array(new ArrayBuffer(8));
const out32 = new Int32Array(new ArrayBuffer(4));
const outF32 = new Float32Array(new ArrayBuffer(4));

function u64ToPtr(v: bigint): DevicePtr {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export function deviceCount(): number {
  check(library().symbols.flash_device_count(out32), "flash_device_count");
  return out32[0]!;
}

export function hasCuda(): boolean {
  try {
    return deviceCount() > 0;
  } catch {
    return false;
  }
}

export interface DeviceProperties {
  name: string;
  major: number;
  minor: number;
  multiprocessorCount: number;
  maxSharedMemoryPerBlockOptin: number;
  totalGlobalMem: number;
  l2CacheSize: number;
  memoryBusWidth: number;
  memoryClockKhz: number;
}

export function deviceProperties(device = 0): DeviceProperties {
  checkIndex("deviceProperties", device);
  const SIZE = 8 + 256 + 4 * 4 + 8 + 4 * 4; // sizeof(flash_device_properties)
  const buf = new ArrayBuffer(SIZE);
  const dv = new DataView(buf);
  dv.setBigUint64(0, BigInt(SIZE), true);
  check(library().symbols.flash_device_get_properties(device, new Uint8Array(buf)), "flash_device_get_properties");
  const nameBytes = new Uint8Array(buf, 8, 256);
  const end = nameBytes.indexOf(0);
  return {
    name: new TextDecoder().decode(nameBytes.subarray(0, end < 0 ? 256 : end)),
    major: dv.getInt32(264, true),
    minor: dv.getInt32(268, true),
    multiprocessorCount: dv.getInt32(272, true),
    maxSharedMemoryPerBlockOptin: dv.getInt32(276, true),
    totalGlobalMem: Number(dv.getBigUint64(280, true)),
    l2CacheSize: dv.getInt32(288, true),
    memoryBusWidth: dv.getInt32(292, true),
    memoryClockKhz: dv.getInt32(296, true),
  };
}

function checkIndex(op: string, device: number) {
  if (!Number.isInteger(device) || device < 0) throw invalid(op, `device=${device} is not a device index`);
}

export function setDevice(device: number): void {
  checkIndex("setDevice", device);
  check(library().symbols.flash_set_device(device), "flash_set_device");
}

export function getDevice(): number {
  check(library().symbols.flash_get_device(out32), "flash_get_device");
  return out32[0]!;
}

export function deviceSynchronize(): void {
  check(library().symbols.flash_device_synchronize(), "flash_device_synchronize");
}

export function checkBytes(op: string, bytes: number): void {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw invalid(op, `bytes=${bytes} is not a byte count`);
}

export function checkPtr(op: string, name: string, p: unknown): asserts p is DevicePtr {
  const ok = typeof p === "bigint" ? p > 0n && p < 1n << 64n : typeof p === "number" && Number.isSafeInteger(p) && p > 0;
  if (!ok) throw invalid(op, `${name}=${String(p)} is not a valid pointer`);
}

/** cudaMalloc through libflash. The caller frees with deviceFree (or uses Tensor, which owns it). */
export function deviceMalloc(bytes: number): DevicePtr {
  checkBytes("deviceMalloc", bytes);
  check(library().symbols.flash_malloc(out64, bytes), "flash_malloc");
  return u64ToPtr(out64[0]!);
}

export function deviceFree(p: DevicePtr): void {
  checkPtr("deviceFree", "ptr", p);
  check(library().symbols.flash_free(p as Pointer), "flash_free");
}

export const MemcpyKind = { HostToHost: 0, HostToDevice: 1, DeviceToHost: 2, DeviceToDevice: 3, Default: 4 } as const;

type Addr = DevicePtr | ArrayBufferView;

/** cudaMemcpy (stream undefined) or cudaMemcpyAsync (stream given; host memory must stay alive until done). */
export function memcpy(dst: Addr, src: Addr, bytes: number, kind: number, stream?: Stream | null): void {
  checkBytes("memcpy", bytes);
  for (const [n, a] of [["dst", dst], ["src", src]] as const) {
    if (ArrayBuffer.isView(a)) {
      if (a.byteLength < bytes) throw invalid("memcpy", `${n} has ${a.byteLength} bytes, ${bytes} requested`);
    } else checkPtr("memcpy", n, a);
  }
  const s = library().symbols;
  if (stream === undefined) check(s.flash_memcpy(dst as Pointer, src as Pointer, bytes, kind), "flash_memcpy");
  else check(s.flash_memcpy_async(dst as Pointer, src as Pointer, bytes, kind, streamHandle(stream)), "flash_memcpy_async");
}

export function memset(p: DevicePtr, value: number, bytes: number, stream?: Stream | null): void {
  checkPtr("memset", "ptr", p);
  checkBytes("memset", bytes);
  if (!Number.isInteger(value) || value < 0 || value > 255) throw invalid("memset", `value=${value} is not a byte`);
  const s = library().symbols;
  if (stream === undefined) check(s.flash_memset(p as Pointer, value, bytes), "flash_memset");
  else check(s.flash_memset_async(p as Pointer, value, bytes, streamHandle(stream)), "flash_memset_async");
}

/** A CUDA stream owned by this object. `null` stands for the legacy default stream everywhere. */
export class Stream implements Disposable {
  #handle: DevicePtr | null;
  constructor() {
    check(library().symbols.flash_stream_create(out64), "flash_stream_create");
    this.#handle = u64ToPtr(out64[0]!);
  }
  get handle(): DevicePtr {
    if (this.#handle === null) throw new FlashDisposedError("Stream used after dispose()", -1, "Stream");
    return this.#handle;
  }
  synchronizeSync(): void {
    check(library().symbols.flash_stream_synchronize(this.handle as Pointer), "flash_stream_synchronize");
  }
  dispose(): void {
    if (this.#handle === null) return;
    const h = this.#handle;
    this.#handle = null;
    check(library().symbols.flash_stream_destroy(h as Pointer), "flash_stream_destroy");
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

export function streamHandle(s: Stream | null | undefined): Pointer | null {
  return s ? (s.handle as Pointer) : null;
}

export class Event implements Disposable {
  #handle: DevicePtr | null;
  constructor() {
    check(library().symbols.flash_event_create(out64), "flash_event_create");
    this.#handle = u64ToPtr(out64[0]!);
  }
  get handle(): DevicePtr {
    if (this.#handle === null) throw new FlashDisposedError("Event used after dispose()", -1, "Event");
    return this.#handle;
  }
  record(stream: Stream | null = null): this {
    check(library().symbols.flash_event_record(this.handle as Pointer, streamHandle(stream)), "flash_event_record");
    return this;
  }
  /** true when the recorded work is complete. */
  query(): boolean {
    const st = library().symbols.flash_event_query(this.handle as Pointer);
    if (st === Status.NOT_READY) return false;
    check(st, "flash_event_query");
    return true;
  }
  synchronizeSync(): void {
    check(library().symbols.flash_event_synchronize(this.handle as Pointer), "flash_event_synchronize");
  }
  /** Milliseconds between two recorded, completed events. */
  elapsedMs(end: Event): number {
    check(library().symbols.flash_event_elapsed_ms(outF32, this.handle as Pointer, end.handle as Pointer), "flash_event_elapsed_ms");
    return outF32[0]!;
  }
  dispose(): void {
    if (this.#handle === null) return;
    const h = this.#handle;
    this.#handle = null;
    check(library().symbols.flash_event_destroy(h as Pointer), "flash_event_destroy");
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * Resolves when all work queued on `stream` so far is done, without blocking the event loop: records an
 * event and polls it with a backoff (FFI calls are synchronous; a blocking sync would freeze the loop).
 */
export async function synchronize(stream: Stream | null = null): Promise<void> {
  using ev = new Event();
  ev.record(stream);
  let wait = 0;
  while (!ev.query()) {
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait + 0.25, 2);
  }
}

/** Blocks until `stream` (null = legacy default stream, which also waits for blocking streams) is idle. */
export function synchronizeSync(stream: Stream | null = null): void {
  if (stream) stream.synchronizeSync();
  else check(library().symbols.flash_stream_synchronize(null), "flash_stream_synchronize");
}

