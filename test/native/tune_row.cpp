// The tuning row of the Hopper tile table (FLASH_SM90_TUNE_*, scripts/ab_tune.sh): an A/B is only as good as the copy
// of the row it times, so every field must come through from its macro unchanged. Built by test/native_host.test.ts
// with values no shipped row has (spec 2 was once narrowed to a bool: session 36), and once per table row with the
// flags scripts/sm90_tune_flags.py prints for it (TUNE_ROW_MASK / TUNE_ROW_ALT name the row): then the copy must equal
// that row in every field but min_sk and softcap, which a tuning row fixes.

#include "cuda/hopper/fwd_sm90_config.h"
#include "expect.h"

using namespace flash::cuda::sm90;

int main() {
    for (int masked = 0; masked < 2; ++masked) {
        const Sm90Tile t = sm90_tile(FLASH_SM90_TUNE_D, FLASH_SM90_TUNE_DV, masked != 0, 0);
        EXPECT(t.d == FLASH_SM90_TUNE_D && t.dv == FLASH_SM90_TUNE_DV && t.masked == masked, "shape %d %d %d\n", t.d, t.dv,
               t.masked);
        EXPECT(t.consumers == FLASH_SM90_TUNE_CONS, "consumers %d\n", t.consumers);
        EXPECT(t.block_n == FLASH_SM90_TUNE_BN, "block_n %d\n", t.block_n);
        EXPECT(t.stages == FLASH_SM90_TUNE_ST, "stages %d\n", t.stages);
        EXPECT(t.overlap == (FLASH_SM90_TUNE_OV != 0), "overlap %d\n", int(t.overlap));
        EXPECT(t.pingpong == (FLASH_SM90_TUNE_PP != 0), "pingpong %d\n", int(t.pingpong));
        EXPECT(t.persistent == (FLASH_SM90_TUNE_PS != 0), "persistent %d\n", int(t.persistent));
        EXPECT(t.dynamic == (FLASH_SM90_TUNE_DY != 0), "dynamic %d\n", int(t.dynamic));
        EXPECT(t.reg_producer == FLASH_SM90_TUNE_RP && t.reg_consumer == FLASH_SM90_TUNE_RC, "regs %d %d\n",
               t.reg_producer, t.reg_consumer);
        EXPECT(t.desc_base == (FLASH_SM90_TUNE_DB != 0), "desc_base %d\n", int(t.desc_base));
        EXPECT(t.q_slots == FLASH_SM90_TUNE_QS, "q_slots %d\n", t.q_slots);
        EXPECT(t.persist_max_n == FLASH_SM90_TUNE_PMN, "persist_max_n %d\n", t.persist_max_n);
        EXPECT(t.tma_o == FLASH_SM90_TUNE_TO, "tma_o %d\n", t.tma_o);
        EXPECT(t.min_sk == 0, "min_sk %d\n", t.min_sk);
        EXPECT(t.dense == (FLASH_SM90_TUNE_DE != 0), "dense %d\n", int(t.dense));
        EXPECT(t.uniform == (FLASH_SM90_TUNE_UN != 0), "uniform %d\n", int(t.uniform));
        EXPECT(t.pair_o == (FLASH_SM90_TUNE_PO != 0), "pair_o %d\n", int(t.pair_o));
        EXPECT(t.stagger == (FLASH_SM90_TUNE_SG != 0), "stagger %d\n", int(t.stagger));
        EXPECT(t.spec == FLASH_SM90_TUNE_SP, "spec %d, expected %d\n", t.spec, FLASH_SM90_TUNE_SP);
        // the second row never serves a length (the tuning row replaces the triple)
        EXPECT(sm90_pick(FLASH_SM90_TUNE_D, FLASH_SM90_TUNE_DV, masked != 0, int64_t(1) << 24, false) == 0, "pick\n");
    }
#ifdef TUNE_ROW_ALT
    const Sm90Tile* row = nullptr; // the table's row itself (sm90_tile returns the copy in this build)
    int alt = TUNE_ROW_ALT;
    for (const Sm90Tile& r : kSm90Tiles)
        if (r.d == FLASH_SM90_TUNE_D && r.dv == FLASH_SM90_TUNE_DV && r.masked == TUNE_ROW_MASK && alt-- == 0) row = &r;
    EXPECT(row != nullptr, "no table row\n");
    if (row) {
        const Sm90Tile c = sm90_tile(FLASH_SM90_TUNE_D, FLASH_SM90_TUNE_DV, TUNE_ROW_MASK != 0, 0), &r = *row;
        EXPECT(c.consumers == r.consumers && c.block_n == r.block_n && c.stages == r.stages && c.overlap == r.overlap &&
                   c.pingpong == r.pingpong && c.persistent == r.persistent && c.dynamic == r.dynamic &&
                   c.reg_producer == r.reg_producer && c.reg_consumer == r.reg_consumer && c.desc_base == r.desc_base &&
                   c.q_slots == r.q_slots && c.persist_max_n == r.persist_max_n && c.tma_o == r.tma_o &&
                   c.dense == r.dense && c.uniform == r.uniform && c.pair_o == r.pair_o && c.stagger == r.stagger &&
                   c.spec == r.spec,
               "the copy of row %d differs from the table\n", TUNE_ROW_ALT);
    }
#endif
    return native_test::finish();
}
