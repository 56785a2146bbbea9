// Scratch memory handed to libflash calls: one buffer per device, grown (never shrunk) when a call
// needs more, so steady-state calls allocate nothing.
import { deviceFree, deviceMalloc } from "./device.ts";
import type { DevicePtr } from "./params.ts";
import type { Device } from "./tensor.ts";

interface Slot { ptr: DevicePtr | Uint8Array; bytes: number }
const slots = new Map<Device, Slot>();

/** A workspace of at least `bytes` on `device` (device pointer, or a host buffer for the CPU). */
export function workspaceFor(device: Device, bytes: number): DevicePtr | Uint8Array | null {
  if (bytes === 0) return null;
  const cur = slots.get(device);
  if (cur && cur.bytes >= bytes) return cur.ptr;
  if (cur && typeof cur.ptr !== "object") deviceFree(cur.ptr);
  const grown = Math.max(bytes, Math.ceil((cur?.bytes ?? 0) * 1.5));
  const ptr = device === "cpu" ? new Uint8Array(new ArrayBuffer(grown)) : deviceMalloc(grown);
  slots.set(device, { ptr, bytes: grown });
  return ptr;
}

/** Frees every cached workspace (e.g. before measuring memory). Safe to call any time no call is in flight. */
export function releaseWorkspaces(): void {
  for (const [, s] of slots) if (typeof s.ptr !== "object") deviceFree(s.ptr);
  slots.clear();
}
