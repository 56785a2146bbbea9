// The ABI layer: include/flash.h ↔ the library's exports and field table ↔ the TS binding's packer.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ABI_VERSION, library } from "../ts/index.ts";
import { SYMBOLS } from "../ts/library.ts";
import { BWD_FIELDS, FWD_FIELDS } from "../ts/layout.gen.ts";
import { fwdPacker } from "../ts/attention.ts";

const root = join(import.meta.dir, "..");
const header = readFileSync(join(root, "include/flash.h"), "utf8");
const declared = [...header.matchAll(/^FLASH_API [^(]*?\b(flash_\w+)\(/gm)].map((m) => m[1]!);

describe("header ↔ library ↔ TS", () => {
  test("every function the header declares is bound by the TS binding, and nothing else", () => {
    expect(declared.length).toBeGreaterThan(30);
    expect(Object.keys(SYMBOLS).sort()).toEqual([...declared].sort());
  });

  test("the library exports exactly the header's functions", () => {
    const nm = Bun.spawnSync(["nm", "-D", "--defined-only", library().path]);
    const exported = nm.stdout.toString().trim().split("\n").map((l) => l.split(" ").pop()!).filter(Boolean);
    expect(exported.sort()).toEqual([...declared].sort());
  });

  test("the generated layout files are up to date with the header", () => {
    const r = Bun.spawnSync([process.execPath, join(root, "scripts/gen_layout.ts"), "--check"]);
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
  });

  test("version and ABI", () => {
    const s = library().symbols;
    expect(s.flash_abi_version()).toBe(ABI_VERSION);
    const v = header.match(/FLASH_VERSION_MAJOR (\d+)[\s\S]*FLASH_VERSION_MINOR (\d+)[\s\S]*FLASH_VERSION_PATCH (\d+)/)!;
    expect(s.flash_version()).toBe(+v[1]! * 10000 + +v[2]! * 100 + +v[3]!);
    expect(library().buildInfo.version).toBe(`${v[1]}.${v[2]}.${v[3]}`);
  });

  test("field tables: names and order as in the header, offsets increasing, no overlap, struct_size first", () => {
    for (const [layout, fields] of [[library().fwdLayout, FWD_FIELDS], [library().bwdLayout, BWD_FIELDS]] as const) {
      const names = [...layout.fields.keys()];
      expect(names).toEqual(fields.map((f) => f[0]));
      let end = 0;
      for (const f of layout.fields.values()) {
        expect(f.offset).toBeGreaterThanOrEqual(end);
        expect(f.offset - end).toBeLessThan(8); // only alignment padding
        end = f.offset + f.size;
      }
      expect(layout.size - end).toBeLessThan(8);
    }
  });

  test("a C compiler agrees with the library's table (offsetof from the installed header)", () => {
    const src = `#include <stdio.h>\n#include <stddef.h>\n#include "flash.h"\nint main(void){\n` +
      FWD_FIELDS.map(([n]) => `printf("fwd ${n} %zu\\n", offsetof(flash_fwd_params, ${n}));`).join("\n") +
      BWD_FIELDS.map(([n]) => `printf("bwd ${n} %zu\\n", offsetof(flash_bwd_params, ${n}));`).join("\n") +
      `printf("size fwd %zu\\nsize bwd %zu\\n", sizeof(flash_fwd_params), sizeof(flash_bwd_params));return 0;}\n`;
    const dir = Bun.spawnSync(["mktemp", "-d"]).stdout.toString().trim();
    Bun.write(join(dir, "t.c"), src);
    const cc = Bun.spawnSync(["cc", "-std=c99", "-I", join(root, "include"), join(dir, "t.c"), "-o", join(dir, "t")]);
    expect(cc.stderr.toString()).toBe("");
    const out = Bun.spawnSync([join(dir, "t")]).stdout.toString().trim().split("\n");
    for (const line of out) {
      const [which, name, value] = line.split(" ");
      if (which === "size") {
        expect(library()[name === "fwd" ? "fwdLayout" : "bwdLayout"].size).toBe(+value!);
        continue;
      }
      const layout = which === "fwd" ? library().fwdLayout : library().bwdLayout;
      expect([name, layout.fields.get(name!)?.offset]).toEqual([name, +value!]);
    }
  });

  test("the TS packer writes each field at the library's offset", () => {
    const p = fwdPacker().reset();
    const view = new DataView(p.bytes.buffer);
    const lay = library().fwdLayout.fields;
    p.i32("h", 1234567).f32("softcap", 2.5).i64("k_row_stride", -3).ptr("q_ptr", 0x7f1d_0000_1234).u64("philox_seed", 2n ** 63n + 5n);
    expect(view.getInt32(lay.get("h")!.offset, true)).toBe(1234567);
    expect(view.getFloat32(lay.get("softcap")!.offset, true)).toBe(2.5);
    expect(view.getBigInt64(lay.get("k_row_stride")!.offset, true)).toBe(-3n);
    expect(view.getBigUint64(lay.get("q_ptr")!.offset, true)).toBe(0x7f1d_0000_1234n);
    expect(view.getBigUint64(lay.get("philox_seed")!.offset, true)).toBe(2n ** 63n + 5n);
    p.ptr("q_ptr", 2n ** 60n + 1n);
    expect(view.getBigUint64(lay.get("q_ptr")!.offset, true)).toBe(2n ** 60n + 1n);
  });

  test("params_init fills the documented defaults", () => {
    const p = fwdPacker().reset();
    expect(p.get("struct_size")).toBe(BigInt(library().fwdLayout.size));
    expect(p.get("device_type")).toBe(2);
    expect(p.get("dtype")).toBe(2);
    expect(p.get("window_size_left")).toBe(-1);
    expect(p.get("window_size_right")).toBe(-1);
    expect(p.get("num_splits")).toBe(0);
    expect(p.get("pack_gqa")).toBe(0);
  });

  test("an unknown params kind has no table", () => {
    const count = new Uint32Array(new ArrayBuffer(4));
    count[0] = 99;
    expect(library().symbols.flash_params_layout(7, count)).toBeNull();
    expect(count[0]).toBe(0);
    expect(library().symbols.flash_params_sizeof(7)).toBe(0n);
  });

  test("status strings", () => {
    const s = library().symbols;
    expect(String(s.flash_status_string(0))).toBe("FLASH_OK");
    expect(String(s.flash_status_string(1))).toBe("FLASH_ERROR_INVALID_ARGUMENT");
    expect(String(s.flash_status_string(12345))).toBe("FLASH_ERROR_UNKNOWN");
  });

  test("a missing library gives one error listing every path tried", () => {
    const r = Bun.spawnSync([process.execPath, "-e", `import("${join(root, "ts/index.ts")}").then(m => { try { m.library() } catch (e) { console.log(e.name); console.log(e.message) } })`], {
      env: { ...process.env, FLASH_LIBRARY_PATH: "/nonexistent/libflash.so" },
      cwd: "/",
    });
    const out = r.stdout.toString();
    expect(out).toContain("FlashAbiError");
    expect(out).toContain("/nonexistent/libflash.so: not found");
  });

  test("build info describes the backends", () => {
    const info = library().buildInfo;
    expect(info.backends).toContain("cpu");
    expect(info.abi).toBe(ABI_VERSION);
    expect(["avx512", "avx2", "neon", "scalar"]).toContain(info.cpu_simd);
  });
});
