// Scratch memory that libflash calls read or write in stream order, cached so steady-state calls allocate
// nothing. One buffer per (stream, device): kernels on two streams run concurrently, so a buffer shared between
// them could be overwritten while the other stream still reads it; within one stream, CUDA's ordering makes
// reuse safe. Growth frees the old buffer with cudaFree, which waits for the device first.
import { ptr as hostAddress } from "bun:ffi";
import { MemcpyKind, deviceFree, deviceMalloc, memcpy, type Stream } from "./device.ts";
import type { DevicePtr } from "./params.ts";
import type { Device } from "./tensor.ts";

interface Buffer { ptr: DevicePtr | Uint8Array; bytes: number }
interface Slots { workspace?: Buffer; seqlens?: { buf: Buffer; host: Int32Array; b: number; value: number } }

const LEGACY_STREAM = {}; // key of the legacy default stream (null / undefined)
// Weak in the stream object; the buffers of a collected Stream stay allocated until releaseWorkspaces().
const byStream = new WeakMap<object, Map<Device, Slots>>();
const allSlots = new Set<Map<Device, Slots>>();

function slotsFor(device: Device, stream: Stream | null | undefined): Slots {
  const key = stream ?? LEGACY_STREAM;
  let perDevice = byStream.get(key);
  if (!perDevice) {
    byStream.set(key, (perDevice = new Map()));
    allSlots.add(perDevice);
  }
  let s = perDevice.get(device);
  if (!s) perDevice.set(device, (s = {}));
  return s;
}

function grow(device: Device, cur: Buffer | undefined, bytes: number): Buffer {
  if (cur && typeof cur.ptr !== "object") deviceFree(cur.ptr);
  const grown = Math.max(bytes, Math.ceil((cur?.bytes ?? 0) * 1.5));
  return { ptr: device === "cpu" ? new Uint8Array(new ArrayBuffer(grown)) : deviceMalloc(grown), bytes: grown };
}

/** A workspace of at least `bytes` on `device` for a call on `stream` (device pointer, or a host buffer). */
export function workspaceFor(device: Device, bytes: number, stream?: Stream | null): DevicePtr | Uint8Array | null {
  if (bytes === 0) return null;
  const s = slotsFor(device, stream);
  if (!s.workspace || s.workspace.bytes < bytes) s.workspace = grow(device, s.workspace, bytes);
  return s.workspace.ptr;
}

/**
 * An int32 [b] array holding `value` b times (cacheSeqlens given as one number), for a call on `stream`. A decode
 * loop passes a new number every step: the array is rewritten by a copy queued on the stream (after the previous
 * step's kernel, before this one's), only when (b, value) changed; nothing is allocated or synchronized.
 */
export function uniformSeqlens(device: Device, b: number, value: number, stream?: Stream | null): DevicePtr {
  const s = slotsFor(device, stream);
  let q = s.seqlens;
  if (!q || q.host.length < b) {
    const cap = Math.max(b, 8, 2 * (q?.host.length ?? 0));
    const buf = grow(device, q?.buf, 4 * cap);
    // on the host the buffer itself is the array the backend reads
    const host = typeof buf.ptr === "object" ? new Int32Array(buf.ptr.buffer, 0, cap) : new Int32Array(cap);
    s.seqlens = q = { buf, host, b: -1, value: -1 };
  }
  if (q.b !== b || q.value !== value) {
    q.host.fill(value, 0, b);
    // pageable source: cudaMemcpyAsync returns once the bytes are staged, so `host` may be rewritten next call
    if (typeof q.buf.ptr !== "object") memcpy(q.buf.ptr, q.host, 4 * b, MemcpyKind.HostToDevice, stream ?? null);
    q.b = b;
    q.value = value;
  }
  return typeof q.buf.ptr === "object" ? (hostAddress(q.buf.ptr) as number) : q.buf.ptr;
}

/** Frees every cached buffer (e.g. before measuring memory). Safe to call any time no call is in flight. */
export function releaseWorkspaces(): void {
  for (const perDevice of allSlots) {
    for (const s of perDevice.values())
      for (const buf of [s.workspace, s.seqlens?.buf]) if (buf && typeof buf.ptr !== "object") deviceFree(buf.ptr);
    perDevice.clear();
  }
}
