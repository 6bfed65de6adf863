// test_gpu's main: without a usable CUDA device every test here is skipped with one clear line and exit 0
// (Catch2 v2 has no SKIP), so running the binary on a CPU machine is not a failure. Listing the tests (CTest's
// discovery at build time) always works.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <torch/cuda.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--list", 0) == 0 || a == "-l" || a == "-h" || a == "--help" || a == "-?") listing = true;
  }
  if (!listing && !torch::cuda::is_available()) {
#ifdef RLVR_HAS_CUDA
    const char* why = "no CUDA device or driver is visible";
#else
    const char* why = "this build is CPU-only (configured without nvcc)";
#endif
    std::printf("test_gpu: SKIPPED: CUDA is not available (%s); the [gpu] tests need a CUDA device\n", why);
    return 0;
  }
  return Catch::Session().run(argc, argv);
}
