#!/usr/bin/env bash
# CPU rehearsal of the GPU check (docs/gpu.md): packs this build's rlvr, test_gpu and bench_gpu with
# scripts/gpu_bundle.sh --from (no compilation), then, in a clean environment (env -i, HOME an empty folder, PATH
# /usr/bin:/bin, no LD_LIBRARY_PATH), checks that
#   1. the binaries carry RUNPATH $ORIGIN/lib and nothing of this machine's build or ~/.cache/rlvr;
#   2. every library they load resolves to the bundle's lib/, the torch wheel (torch/lib, nvidia/*/lib) or the C
#      library, and the Debian libraries come from the bundle;
#   3. scripts/gpu_check.sh runs from the bundle: rlvr --version, the CUDA parts SKIPPED with the reason, test_gpu's
#      own skip line, a 2-step CPU GRPO run and the benchmarks on tiny shapes succeed.
# Usage: rehearsal.sh BUILD_DIR WORK_DIR PYTHON_WITH_TORCH
set -euo pipefail
build=$1 work=$2 py=$3
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fail() { echo "rehearsal: FAILED: $*" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work/home" "$work/out"
t0=$(date +%s)

RLVR_PYTHON=$py bash "$root/scripts/gpu_bundle.sh" --from "$build" --out "$work/bundle" | tee "$work/pack.log"
grep -q '^\[bundle\] .*MiB' "$work/pack.log" || fail "gpu_bundle.sh printed no size"
B=$work/bundle
torch_dir=$("$py" -c 'import torch,os;print(os.path.dirname(torch.__file__))')
site=$(dirname "$torch_dir")

# 1. RUNPATH
for b in rlvr test_gpu bench_gpu; do
  rp=$(readelf -d "$B/$b" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')
  [ "$rp" = '$ORIGIN/lib' ] || fail "$b has RUNPATH '$rp', expected \$ORIGIN/lib"
  readelf -d "$B/$b" | grep -q 'RPATH)' && fail "$b still has an RPATH entry"
  if readelf -d "$B/$b" | grep -E 'NEEDED|RUNPATH' | grep -q -E "$build|\.cache/rlvr"; then fail "$b names a build-machine path"; fi
done
[ -n "$(ls "$B/lib"/*.so* 2>/dev/null)" ] || fail "the bundle has no lib/ libraries"

# 2. Where each library resolves in the clean environment (the wheel's folders as gpu_check.sh puts them).
libpath="$torch_dir/lib"
for d in "$site"/nvidia/*/lib; do [ -d "$d" ] && libpath="$libpath:$d"; done
for b in rlvr test_gpu bench_gpu; do
  env -i HOME="$work/home" PATH=/usr/bin:/bin LD_LIBRARY_PATH="$libpath" ldd "$B/$b" > "$work/ldd_$b.txt"
  while read -r soname _ path _; do
    [ -n "${path:-}" ] || continue
    [ "$path" = not ] && fail "$b: $soname not found in the clean environment"
    case "$path" in
      "$B"/lib/*|"$torch_dir"/*|"$site"/nvidia/*) ;;
      *) case "$soname" in
           libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libutil.so.*|libresolv.so.*|libstdc++.so.*|libgcc_s.so.*) ;;
           *) fail "$b: $soname resolves to $path, outside the bundle, the wheel and the C library" ;;
         esac ;;
    esac
  done < "$work/ldd_$b.txt"
done
for lib in libyaml-cpp libspdlog libginac libpcre2-8; do
  grep -q "^[[:space:]]*$lib[.-].*=> $B/lib/" "$work/ldd_rlvr.txt" || fail "rlvr does not load $lib from the bundle"
done
if cat "$work"/ldd_*.txt | grep -v -F "$B/" | grep -q -F "$build/"; then fail "a library resolves into the build directory $build"; fi

# 3. The check itself, from the bundle, in the clean environment.
set +e
env -i HOME="$work/home" PATH=/usr/bin:/bin RLVR_PYTHON="$py" RLVR_GPU_CHECK_BUDGET_S=600 TMPDIR="$work" \
  bash "$root/scripts/gpu_check.sh" "$B" "$work/out" > "$work/check.stdout" 2>&1
rc=$?
set -e
cat "$work/out/summary.txt" || true
[ $rc -eq 0 ] || { tail -40 "$work/out/gpu_check.log"; fail "gpu_check.sh exited $rc"; }
S=$work/out/summary.txt L=$work/out/gpu_check.log
grep -q '^version: ok' "$S" || fail "rlvr --version did not run from the bundle"
grep -q '^rlvr [0-9]' "$L" || fail "no 'rlvr <version>' line"
for p in tests grpo-cuda attention ckpt decode; do
  grep -q "^$p: SKIPPED (CUDA not available: cuda: not available" "$S" || fail "the CUDA part $p was not skipped with the reason"
done
grep -q '^test_gpu: SKIPPED: CUDA is not available' "$L" || fail "test_gpu did not print its skip line"
grep -q '^cpu-smoke: ok' "$S" || { tail -30 "$L"; fail "the CPU smoke run failed"; }
grep -q '^bench-cpu-tiny: ok' "$S" || { tail -30 "$L"; fail "the tiny CPU benchmarks failed"; }
for w in 'attention training' 'attention decode' 'decode batch 4 context 128' 'ckpt micro-batch 2 x 128'; do
  grep -q "^bench-gpu: $w" "$L" || fail "no 'bench-gpu: $w' line"
done
[ -z "$(ls -A "$work/home")" ] || fail "something wrote into HOME: $(ls -A "$work/home")"
echo "rehearsal: ok in $(( $(date +%s) - t0 )) s"
