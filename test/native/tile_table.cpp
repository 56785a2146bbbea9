// Host checks of the forward tile tables (mma.sync: cuda/fwd_config.h; Hopper: hopper/fwd_sm90_config.h), built and run by
// test/native_host.test.ts with the host C++ compiler. Including the header already asserts the table's rules
// at compile time (sm90_table_error; CI compiles no sm_90a code, so this is where a bad edit is caught); here the
// row choice is checked against its contract. Prints one line per failure and "ok <checks>"; exits 1 on any failure.
#include <cstdint>
#include <cstdio>

#include "cuda/bwd/bwd_config.h"
#include "cuda/fwd_config.h"
#include "cuda/hopper/fwd_sm90_config.h"
#include "expect.h"

using namespace flash::cuda::sm90;
using flash::cuda::FwdTile;
using flash::cuda::kFwdTiles;

// sm90_pick: without softcap, the last row whose min_sk the length reaches; with softcap, a row that has a
// softcap kernel (the length's row if it has one).
static void pick() {
    const int64_t lengths[] = {1, 17, 97, 511, 512, 1023, 1024, 1025, 1535, 1536, 1537, 2047, 2048, 2049, 4095, 4096, 16384,
                               int64_t(1) << 31};
    for (const Sm90Tile& row : kSm90Tiles) {
        const int d = row.d, dv = row.dv;
        const bool masked = row.masked != 0;
        const int alts = sm90_alts(d, dv, masked);
        for (int64_t sk : lengths) {
            int want = 0;
            for (int a = 0; a < alts; ++a)
                if (sk >= sm90_tile(d, dv, masked, a).min_sk) want = a;
            const int got = sm90_pick(d, dv, masked, sk, false);
            EXPECT(got == want, "d%d dv%d masked %d sk %lld: row %d, expected %d\n", d, dv, int(masked), (long long)sk, got, want);
            const int sc = sm90_pick(d, dv, masked, sk, true);
            EXPECT(sm90_tile(d, dv, masked, sc).softcap, "d%d dv%d masked %d sk %lld: softcap on row %d without softcap\n",
                   d, dv, int(masked), (long long)sk, sc);
            if (sm90_tile(d, dv, masked, want).softcap)
                EXPECT(sc == want, "d%d dv%d masked %d sk %lld: softcap left its length's row %d for %d\n", d, dv,
                       int(masked), (long long)sk, want, sc);
        }
    }
}

// Every row passes its own rules (the static_assert covers the table; this names the rule if one ever fails).
static void rows() {
    for (const Sm90Tile& t : kSm90Tiles) {
        const char* e = sm90_tile_error(t);
        EXPECT(e == nullptr, "row d%d masked %d consumers %d block_n %d: %s\n", t.d, t.masked, t.consumers, t.block_n,
               e ? e : "");
    }
    // The rules reject what they name (a rule that accepts everything would pass the table too).
    Sm90Tile t = kSm90Tiles[0];
    t.stages = 8;
    EXPECT(sm90_tile_error(t) != nullptr, "8 K/V stages at d%d accepted (%d bytes)\n", t.d, sm90_smem_bytes(t));
    t = kSm90Tiles[0];
    t.reg_consumer = 256;
    EXPECT(sm90_tile_error(t) != nullptr, "256 consumer registers accepted\n");
    t = kSm90Tiles[0];
    t.block_n = 72;
    EXPECT(sm90_tile_error(t) != nullptr, "block_n 72 accepted\n");
    t = kSm90Tiles[0];
    t.consumers = 3;
    t.pingpong = true;
    EXPECT(sm90_tile_error(t) != nullptr, "ping-pong with 3 consumers accepted\n");
    // The O buffer: its bytes counted (64 rows x dv), its turn-taking limited to two consumers; O through the Q slot
    // of a persistent CTA only with a second slot.
    t = sm90_tile(256, 256, false, 0);
    EXPECT(t.tma_o == 2, "d256's short non-causal row no longer stages O in its own buffer: update this test\n");
    Sm90Tile u = t;
    u.tma_o = 0;
    EXPECT(sm90_smem_bytes(t) - sm90_smem_bytes(u) == 64 * 256 * 2, "O buffer counted as %d bytes\n",
           sm90_smem_bytes(t) - sm90_smem_bytes(u));
    u = kSm90Tiles[0];
    u.consumers = 3;
    u.pingpong = false;
    u.stagger = true;
    EXPECT(sm90_tile_error(u) != nullptr, "stagger without ping-pong accepted\n");
    u.stagger = false;
    u.q_slots = 1;
    u.tma_o = 2;
    EXPECT(sm90_tile_error(u) != nullptr, "the O buffer with 3 consumers accepted\n");
    u.consumers = 2;
    EXPECT(sm90_tile_error(u) == nullptr, "the O buffer with 2 consumers rejected: %s\n", sm90_tile_error(u));
    u.tma_o = 1;
    EXPECT(sm90_tile_error(u) != nullptr, "O through the only Q slot of a persistent CTA accepted\n");
    u.tma_o = 3;
    EXPECT(sm90_tile_error(u) != nullptr, "tma_o 3 accepted\n");
    u = t;
    u.spec = 3;
    EXPECT(sm90_tile_error(u) != nullptr, "spec 3 accepted\n");
    u.spec = 2;
    EXPECT(sm90_tile_error(u) == nullptr, "spec 2 rejected: %s\n", sm90_tile_error(u));
}

// The instantiated head dims: max(d, dv) in (32, 256] runs on the smallest head dim of the table that holds it
// (both masks have rows there); d <= 32 and d > 256 stay off the Hopper path (0).
static void dims() {
    for (int dm = 1; dm <= 300; ++dm) {
        int want = 0;
        if (dm > 32)
            for (const Sm90Tile& t : kSm90Tiles)
                if (t.d >= dm && (want == 0 || t.d < want)) want = t.d;
        const int got = sm90_dim(dm);
        EXPECT(got == want, "sm90_dim(%d) = %d, the table's smallest holding it is %d\n", dm, got, want);
        if (got) EXPECT(sm90_tile(got, got, false).d == got && sm90_tile(got, got, true).d == got, "d%d has no rows\n", got);
        // The narrow-V instantiation: its rows exist for both masks, and it is taken only where V fits it.
        for (int dv = 1; dv <= got; ++dv) {
            const int gv = sm90_dim_v(got, dv);
            EXPECT(gv >= dv && gv <= got, "sm90_dim_v(%d, %d) = %d\n", got, dv, gv);
            EXPECT(sm90_tile(got, gv, false).dv == gv && sm90_tile(got, gv, true).dv == gv, "d%d dv%d has no rows\n",
                   got, gv);
        }
    }
    EXPECT(sm90_dim_v(192, 128) == 128 && sm90_dim_v(192, 129) == 192 && sm90_dim_v(128, 64) == 128,
           "sm90_dim_v: MLA's 192 / 128 only\n");
    // Shared memory counts V at its own width: the 192 / 128 row holds block_n x 64 columns less per stage.
    Sm90Tile a = sm90_tile(192, 128, false);
    a.tma_o = 0; // (an O buffer would add 64 x 64 columns more)
    Sm90Tile b = a;
    b.dv = 192;
    EXPECT(sm90_smem_bytes(b) - sm90_smem_bytes(a) == a.stages * a.block_n * 64 * 2, "narrow-V shared memory\n");
}

// The mma.sync table: its rows pass fwd_tile_error, the shared-memory figure is the layout's (pitch padding at
// d96), and the rules reject what they name.
static void fwd_rows() {
    using flash::cuda::fwd_smem_bytes;
    using flash::cuda::fwd_tile_error;
    for (const FwdTile& t : kFwdTiles) {
        const char* e = fwd_tile_error(t);
        EXPECT(e == nullptr, "mma row d%d masked %d: %s\n", t.d, t.masked, e ? e : "");
    }
    const FwdTile d128 = flash::cuda::fwd_tile(128, false), d96 = flash::cuda::fwd_tile(96, false);
    EXPECT(fwd_smem_bytes(d128) == (d128.block_m + 2 * d128.stages * d128.block_n) * 16 * 16,
           "d128 shared memory %d\n", fwd_smem_bytes(d128));
    EXPECT(fwd_smem_bytes(d96) == (d96.block_m + 2 * d96.stages * d96.block_n) * 13 * 16,
           "d96 shared memory %d (12 chunks per row at pitch 13)\n", fwd_smem_bytes(d96));
    // MLA's narrow V on the d192 row: V rows of 128 (16 chunks), Q and K rows of 192 (24 chunks); only 192 takes it.
    const FwdTile d192 = flash::cuda::fwd_tile(192, true);
    EXPECT(fwd_smem_bytes(d192, 128) == (d192.block_m + d192.stages * d192.block_n) * 24 * 16 +
                                            d192.stages * d192.block_n * 16 * 16,
           "d192 / dv128 shared memory %d\n", fwd_smem_bytes(d192, 128));
    EXPECT(fwd_smem_bytes(d192, 192) == fwd_smem_bytes(d192), "dv = d differs from the default\n");
    EXPECT(flash::cuda::fwd_dim_v(192, 128) == 128 && flash::cuda::fwd_dim_v(192, 100) == 128 &&
               flash::cuda::fwd_dim_v(192, 129) == 192 && flash::cuda::fwd_dim_v(128, 64) == 128 &&
               flash::cuda::fwd_dim_v(256, 128) == 256,
           "fwd_dim_v: MLA's 192 / 128 only\n");
    FwdTile t = flash::cuda::fwd_tile(256, true);
    t.stages = 8;
    EXPECT(fwd_tile_error(t) != nullptr, "8 stages at d256 accepted (%d bytes)\n", fwd_smem_bytes(t));
    t = flash::cuda::fwd_tile(256, true);
    t.ctas_per_sm = 3;
    EXPECT(fwd_tile_error(t) != nullptr, "3 CTAs of %d bytes per SM accepted\n", fwd_smem_bytes(t));
    t = flash::cuda::fwd_tile(128, false);
    t.block_m = 80;
    EXPECT(fwd_tile_error(t) != nullptr, "block_m 80 with %d warps accepted\n", t.warps);
    EXPECT(flash::cuda::fwd_table_error() == nullptr, "fwd_table_error: %s\n", flash::cuda::fwd_table_error());
    // load_tile's lanes: one chunk per lane where the threads are a multiple of the row's chunks; d192's 24 chunks
    // as 8 lanes x 3 (a copy reads 128 bytes of each row); d96's 12 none (4 lanes x 3 read 64: padded lanes instead).
    using flash::cuda::load_lane_chunks;
    EXPECT(load_lane_chunks(16, 128, 64) == 1 && load_lane_chunks(4, 128, 128) == 1 && load_lane_chunks(32, 256, 64) == 1,
           "load_lane_chunks: whole rows per thread group\n");
    EXPECT(load_lane_chunks(24, 128, 64) == 3 && load_lane_chunks(24, 256, 32) == 3, "load_lane_chunks(24) = %d\n",
           load_lane_chunks(24, 128, 64));
    EXPECT(load_lane_chunks(12, 128, 128) == 0 && load_lane_chunks(24, 128, 8) == 0, "load_lane_chunks(12) = %d\n",
           load_lane_chunks(12, 128, 128));
}

// The mma.sync backward's narrow V (MLA's 192 / 128): V and dO rows of 128 (16 chunks) beside Q and K rows of 192
// (24 chunks); the large tile then fits the 99 KB of sm86/89/120 (bwd.cu takes it there), with the
// deterministic dQ kernel too; only 192 takes it.
static void bwd_rows() {
    using flash::cuda::bwd_dq_smem_bytes;
    using flash::cuda::bwd_smem_bytes;
    const flash::cuda::BwdTile t = flash::cuda::bwd_tile(192), s = flash::cuda::bwd_tile(192, true);
    const int want = 2 * t.block_n * 24 * 16 - t.block_n * 8 * 16 + t.qstages * t.block_m * (24 + 16) * 16 +
                     2 * t.block_m * t.block_n * 2 + 2 * t.qstages * t.block_m * 4;
    EXPECT(bwd_smem_bytes(t, 128) == want, "d192 / dv128 backward shared memory %d, expected %d\n",
           bwd_smem_bytes(t, 128), want);
    EXPECT(bwd_smem_bytes(t, 192) == bwd_smem_bytes(t) && bwd_dq_smem_bytes(t, 192) == bwd_dq_smem_bytes(t),
           "dv = d differs from the default\n");
    EXPECT(bwd_smem_bytes(t, 128) <= 99 * 1024 && bwd_dq_smem_bytes(t, 128) <= 99 * 1024,
           "d192 / dv128's large backward tile (%d / %d bytes) no longer fits 99 KB\n", bwd_smem_bytes(t, 128),
           bwd_dq_smem_bytes(t, 128));
    EXPECT(bwd_smem_bytes(t) > 99 * 1024, "d192's padded-V large tile fits 99 KB: the small class is stale\n");
    EXPECT(bwd_smem_bytes(s, 128) < bwd_smem_bytes(s), "the small tile's narrow V saves nothing\n");
    EXPECT(flash::cuda::bwd_dim_v(192, 128) == 128 && flash::cuda::bwd_dim_v(192, 64) == 128 &&
               flash::cuda::bwd_dim_v(192, 129) == 192 && flash::cuda::bwd_dim_v(128, 64) == 128 &&
               flash::cuda::bwd_dim_v(256, 128) == 256,
           "bwd_dim_v: MLA's 192 / 128 only\n");
}

int main() {
    pick();
    rows();
    dims();
    fwd_rows();
    bwd_rows();
    return native_test::finish();
}
