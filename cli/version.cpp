#include <fmt/format.h>
#include <torch/cuda.h>

#include "cli/commands.h"

#ifndef RLVR_TORCH_VERSION
#define RLVR_TORCH_VERSION "unknown"
#endif

namespace rlvr::cli {

std::string version_string() {
  bool cuda = torch::cuda::is_available();
  int n = cuda ? static_cast<int>(torch::cuda::device_count()) : 0;
#ifdef RLVR_HAS_CUDA
  const char* built = "built with CUDA";
#else
  const char* built = "built CPU-only";
#endif
  return fmt::format("rlvr {}\ntorch {} ({})\ncuda: {} ({} device{})", RLVR_VERSION, RLVR_TORCH_VERSION, built,
                     cuda ? "available" : "not available", n, n == 1 ? "" : "s");
}

}  // namespace rlvr::cli
