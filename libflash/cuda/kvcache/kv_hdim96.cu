// KV-cache decode attention, head dim 96 (fp16 and bf16).
#include "kv_launch.cuh"

FLASH_KV_INSTANTIATE(96)
