#!/usr/bin/env bash
# Peak memory of one optimizer step on a Qwen2.5-0.5B-shaped random model (24 layers, hidden 896, 14 heads,
# 2 KV heads, intermediate 4864, vocabulary 151936, tied embeddings: 494M parameters), bf16 working weights with
# fp32 masters; `fp32` as the first argument for the fp32 run. About 9 GB of RAM; /usr/bin/time -v reports the
# same peak from outside the process. Usage: bench/precision/run.sh [bf16|fp32]  (after building bench_memory)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${BENCH_MEMORY:-$here/../../build/bench/precision/bench_memory}
dtype=${1:-bf16}
if [ -x /usr/bin/time ]; then
  /usr/bin/time -v "$bin" --dtype "$dtype" 2> >(grep -E "Maximum resident|Elapsed" >&2)
else
  "$bin" --dtype "$dtype"
fi
