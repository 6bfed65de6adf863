# Sourced by the scripts: the shared virtualenv, the build directory and the compiler cache settings.
RLVR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${RLVR_VENV:=$HOME/.cache/rlvr/venv-torch2.11.0}"
: "${RLVR_BUILD:=$RLVR_ROOT/build}"
export RLVR_ROOT RLVR_VENV RLVR_BUILD
[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"
# ccache shared by every clone on this machine: paths rewritten relative to the clone, and the
# sloppiness that precompiled headers need.
export CCACHE_BASEDIR="$RLVR_ROOT"
export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-20G}"
# -g1 makes ccache hash the build directory by default, so that no two clones ever share an object: don't.
export CCACHE_NOHASHDIR=1

rlvr_configure_and_build() {
  local jobs; jobs=$(nproc)
  if [ ! -f "$RLVR_BUILD/build.ninja" ]; then
    cmake -S "$RLVR_ROOT" -B "$RLVR_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DPython3_EXECUTABLE="$RLVR_VENV/bin/python" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
  fi
  cmake --build "$RLVR_BUILD" -j "$jobs" "$@"
}
