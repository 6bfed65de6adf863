#!/usr/bin/env bash
# Builds the verifier libFuzzer target with clang (-fsanitize=fuzzer,address,undefined) and runs it for a
# bounded time from a seed corpus (tests/rewards/verifier_cases.jsonl + hostile seeds). Fails on any crash,
# leak, sanitizer report or slow unit (-timeout per input).
#   scripts/fuzz_verifier.sh [SECONDS=60] [BUILD_DIR=build-fuzz]
# Needs clang with libFuzzer (Debian: apt-get install clang).
set -euo pipefail
SECS=${1:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${2:-$ROOT/build-fuzz}
CXX=${CXX_FUZZ:-clang++}
command -v "$CXX" >/dev/null || { echo "fuzz_verifier: $CXX not found (apt-get install clang)" >&2; exit 2; }
mkdir -p "$OUT/corpus" "$OUT/obj"
SRCS="rewards/verifier.cpp rewards/extract.cpp rewards/math_parse.cpp rewards/math_eval.cpp tests/rewards/fuzz_verifier.cpp"
FLAGS="-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$ROOT"
BIN="$OUT/fuzz_verifier"
if [[ ! -x "$BIN" || -n "$(find $ROOT/rewards $ROOT/tests/rewards/fuzz_verifier.cpp -newer "$BIN" -name '*.[ch]*' 2>/dev/null)" ]]; then
  objs=()
  for s in $SRCS; do
    o="$OUT/obj/$(basename "${s%.cpp}").o"
    $CXX $FLAGS -c "$ROOT/$s" -o "$o"
    objs+=("$o")
  done
  $CXX $FLAGS "${objs[@]}" -lginac -lcln -o "$BIN"
fi
# Seed corpus: every case of the table (pred NUL gold), plus hostile seeds.
python3 - "$ROOT/tests/rewards/verifier_cases.jsonl" "$OUT/corpus" <<'PY'
import json, os, sys
src, out = sys.argv[1], sys.argv[2]
for i, l in enumerate(open(src, encoding="utf-8")):
    c = json.loads(l)
    open(os.path.join(out, f"case{i:04d}"), "wb").write(c["pred"].encode() + b"\0" + c["gold"].encode())
seeds = [b"\\boxed{10^{10^{10}}}\x0010^{10^{10}}", b"\\boxed{" + b"{" * 3000 + b"\x001",
         b"(" * 2000 + b"1" + b")" * 2000 + b"\x001", b"\xff\xfe\\boxed{\xc3\x28}\x00\xa0",
         b"\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}\x00\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}",
         b"x \\in [0,1) \\cup (2,\\infty)\x00x\\ge 0", b"\\sqrt[3]{-8}^{2/3}\x00 4^{1/3}"]
for k, s in enumerate(seeds):
    open(os.path.join(out, f"hostile{k}"), "wb").write(s)
PY
# CLN/GiNaC keep process-lifetime caches that LeakSanitizer reports at exit; they are not per-input leaks.
printf 'leak:libcln.so\nleak:libginac.so\n' > "$OUT/lsan.supp"
export LSAN_OPTIONS="suppressions=$OUT/lsan.supp:print_suppressions=0"
echo "fuzz_verifier: running for ${SECS}s"
"$BIN" "$OUT/corpus" -max_total_time="$SECS" -timeout=5 -rss_limit_mb=2048 -max_len=8192 \
  -print_final_stats=1 -artifact_prefix="$OUT/" 2>&1 | tail -25
echo "fuzz_verifier: no crash, no hang in ${SECS}s"
