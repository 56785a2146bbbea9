// KV-cache decode attention, head dim 128 (fp16 and bf16).
#include "kv_launch.cuh"

FLASH_KV_INSTANTIATE(128)
