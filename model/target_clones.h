// RLVR_CLONES: compile a raw-loop kernel twice, for x86-64-v3 (AVX2 + FMA) and the baseline, and let the loader
// pick the clone the CPU runs (GCC on x86-64; elsewhere one plain build).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RLVR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define RLVR_CLONES
#endif
