// One import for tests: `import * as ref from "../ref/index.ts"` (or named imports).
export * from "./rng.ts";
export * from "./philox.ts";
export * from "./core.ts";
export * from "./attention.ts";
export * from "./backward.ts";
export * from "./tolerance.ts";
export * from "./kvcache.ts";
export * from "./layout.ts";
export * from "./gen.ts";
