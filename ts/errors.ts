// Typed errors: every failing libflash call becomes one of these, carrying the C status code and the
// library's own message (which names the field and the values).

/** flash_status values of include/flash.h. */
export const Status = {
  OK: 0,
  INVALID_ARGUMENT: 1,
  UNSUPPORTED: 2,
  NOT_IMPLEMENTED: 3,
  CUDA: 4,
  OUT_OF_MEMORY: 5,
  ABI: 6,
  NOT_READY: 7,
  INTERNAL: 8,
} as const;

export class FlashError extends Error {
  override name = "FlashError";
  constructor(
    message: string,
    /** flash_status code (Status.*); -1 for errors raised by the TS layer before any call. */
    readonly code: number,
    /** The C function (or TS function) that failed. */
    readonly op: string,
  ) {
    super(message);
  }
}
/** A field or argument breaks a documented rule (raised by the TS layer or by the library). */
export class FlashInvalidArgumentError extends FlashError { override name = "FlashInvalidArgumentError"; }
/** Valid, but this build or GPU cannot run it. */
export class FlashUnsupportedError extends FlashError { override name = "FlashUnsupportedError"; }
/** Valid and planned, not implemented on this backend yet. */
export class FlashNotImplementedError extends FlashError { override name = "FlashNotImplementedError"; }
/** A CUDA runtime call failed; `cudaError` is the cudaError_t value. */
export class FlashCudaError extends FlashError {
  override name = "FlashCudaError";
  constructor(message: string, code: number, op: string, readonly cudaError: number) {
    super(message, code, op);
  }
  /** Errors after which the CUDA context is unusable (illegal address, launch failure...): restart the process. */
  get fatal(): boolean {
    return [700, 701, 702, 709, 710, 714, 715, 716, 719, 720].includes(this.cudaError);
  }
}
export class FlashOutOfMemoryError extends FlashError { override name = "FlashOutOfMemoryError"; }
/** The loaded library does not match this binding (version, struct layout, missing symbol). */
export class FlashAbiError extends FlashError { override name = "FlashAbiError"; }
/** A library-owned resource was used after dispose(). */
export class FlashDisposedError extends FlashError { override name = "FlashDisposedError"; }

export function errorFor(code: number, op: string, message: string, cudaError = 0): FlashError {
  const text = `${op}: ${message || "failed"} (status ${code})`;
  switch (code) {
    case Status.INVALID_ARGUMENT: return new FlashInvalidArgumentError(text, code, op);
    case Status.UNSUPPORTED: return new FlashUnsupportedError(text, code, op);
    case Status.NOT_IMPLEMENTED: return new FlashNotImplementedError(text, code, op);
    case Status.CUDA: return new FlashCudaError(text, code, op, cudaError);
    case Status.OUT_OF_MEMORY: return new FlashOutOfMemoryError(text, code, op);
    case Status.ABI: return new FlashAbiError(text, code, op);
    default: return new FlashError(text, code, op);
  }
}

/** An argument error raised in TS, before any FFI call. */
export function invalid(op: string, message: string): FlashInvalidArgumentError {
  return new FlashInvalidArgumentError(`${op}: ${message}`, Status.INVALID_ARGUMENT, op);
}
