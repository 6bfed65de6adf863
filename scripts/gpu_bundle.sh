#!/usr/bin/env bash
# Packs rlvr, test_gpu and bench_gpu for a bare GPU machine (same torch wheel, no compiler, no apt, no network),
# in one folder small enough to carry (docs/gpu.md):
#   <bundle>/rlvr, test_gpu, bench_gpu   stripped, RUNPATH $ORIGIN/lib
#   <bundle>/lib/                        every shared library they need that is neither in the torch wheel
#                                        (torch/lib, nvidia/*/lib: found on the GPU machine by gpu_check.sh) nor
#                                        the C library; each with RUNPATH $ORIGIN
#   <bundle>/lib/fallback/               libstdc++ / libgcc_s of this machine: used only where the GPU machine's
#                                        own are too old (gpu_check.sh decides)
#   <bundle>/MANIFEST                    what was packed, from where, and the sizes
# Usage:
#   scripts/gpu_bundle.sh                  build in build-bundle/ (Release -O2, no debug info; only these three
#                                          targets; ccache) and pack into build-bundle/bundle
#   scripts/gpu_bundle.sh --from BUILD [--out DIR]
#                                          pack an existing build's binaries instead (no compilation; the CPU
#                                          rehearsal packs the test build this way)
# Prints the bundle size; fails when it exceeds 40 MiB (RLVR_BUNDLE_MAX_MIB) or a library cannot be resolved.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

from="" out=""
while (($#)); do
  case "$1" in
    --from) from=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu_bundle.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for tool in patchelf strip ldd; do
  command -v "$tool" >/dev/null || { echo "gpu_bundle.sh: '$tool' not found (scripts/setup.sh installs it)" >&2; exit 1; }
done
PY=${RLVR_PYTHON:-$RLVR_VENV/bin/python}
[ -x "$PY" ] || { echo "gpu_bundle.sh: no Python with torch at $PY (run scripts/setup.sh)" >&2; exit 1; }
TORCH_DIR=$("$PY" -c 'import torch,os;print(os.path.dirname(torch.__file__))')
SITE=$(dirname "$TORCH_DIR")

if [ -z "$from" ]; then
  from="$RLVR_ROOT/build-bundle"
  t0=$(date +%s)
  if [ ! -f "$from/build.ninja" ]; then
    cmake -S "$RLVR_ROOT" -B "$from" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
      -DRLVR_BUILD_BENCH=OFF -DPython3_EXECUTABLE="$PY" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
  fi
  cmake --build "$from" -j "${RLVR_JOBS:-$(nproc)}" --target rlvr test_gpu bench_gpu
  echo "[bundle] built rlvr test_gpu bench_gpu in $from in $(( $(date +%s) - t0 )) s"
fi
from=$(cd "$from" && pwd)
out=${out:-$from/bundle}
bins=("$from/cli/rlvr" "$from/tests/gpu/test_gpu" "$from/tests/gpu/bench_gpu")
for b in "${bins[@]}"; do
  [ -x "$b" ] || { echo "gpu_bundle.sh: $b is missing (build the targets rlvr test_gpu bench_gpu)" >&2; exit 1; }
done

tmp="$out.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/lib/fallback"
trap 'rm -rf "$tmp"' EXIT
# ldd with the wheel's folders on the path, so that every library resolves and the wheel's can be told apart.
wheel_path="$TORCH_DIR/lib"
for d in "$SITE"/nvidia/*/lib; do [ -d "$d" ] && wheel_path="$wheel_path:$d"; done
{
  echo "rlvr GPU bundle, packed $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname) from $from"
  echo "git: $(git -C "$RLVR_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$RLVR_ROOT" diff --quiet 2>/dev/null || echo ' (+ local changes)')"
  echo "torch wheel at pack time: $TORCH_DIR"
} > "$tmp/MANIFEST"
declare -A copied=()
for b in "${bins[@]}"; do
  name=$(basename "$b")
  cp "$b" "$tmp/$name"
  strip --strip-all "$tmp/$name"
  patchelf --set-rpath '$ORIGIN/lib' "$tmp/$name"
  while read -r soname _ path _; do
    [ -n "${path:-}" ] || continue
    if [ "$path" = "not" ]; then echo "gpu_bundle.sh: $name needs $soname, which ldd cannot find" >&2; exit 1; fi
    case "$path" in "$TORCH_DIR"/*|"$SITE"/nvidia/*) continue ;; esac          # the wheel: on the GPU machine
    case "$soname" in
      libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libutil.so.*|libresolv.so.*|ld-linux*|linux-vdso*) continue ;;
      libstdc++.so.*|libgcc_s.so.*) dest="$tmp/lib/fallback/$soname" ;;       # the GPU machine's own first
      *) dest="$tmp/lib/$soname" ;;
    esac
    [ -n "${copied[$soname]:-}" ] && continue
    cp -L "$path" "$dest"
    chmod u+w "$dest"
    strip --strip-unneeded "$dest" 2>/dev/null || true
    patchelf --set-rpath '$ORIGIN:$ORIGIN/..' "$dest"
    copied[$soname]=$path
    echo "lib $soname <- $path" >> "$tmp/MANIFEST"
  done < <(LD_LIBRARY_PATH="$wheel_path" ldd "$b")
done
du -b "$tmp"/* "$tmp"/lib/* "$tmp"/lib/fallback/* 2>/dev/null | sort -k2 | awk '{printf "size %8.2f MiB %s\n", $1/1048576, $2}' \
  | sed "s|$tmp/||" >> "$tmp/MANIFEST"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
bytes=$(du -sb "$out" | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN{printf "%.1f", b/1048576}')
echo "[bundle] $out: $mib MiB ($(ls "$out/lib" | grep -c '\.so') libraries + $(ls "$out/lib/fallback" | wc -l) fallback), see $out/MANIFEST"
max=${RLVR_BUNDLE_MAX_MIB:-40}
if awk -v b="$bytes" -v m="$max" 'BEGIN{exit !(b > m * 1048576)}'; then
  echo "gpu_bundle.sh: the bundle is $mib MiB, over the $max MiB limit" >&2
  exit 1
fi
