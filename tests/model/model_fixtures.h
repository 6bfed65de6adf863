// Shared helpers for the model tests: where the reference fixtures live (tests/reference/make_model.py)
// and a small scratch directory per test.
#pragma once
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

inline std::filesystem::path model_fixture_dir(const std::string& name) {
  auto d = std::filesystem::path(RLVR_BINARY_DIR) / "fixtures" / "model" / name;
  if (!std::filesystem::exists(d / "ref.json"))
    FAIL("missing model fixture " << d.string() << "; run: python tests/reference/make_model.py --out "
                                  << RLVR_BINARY_DIR << "/fixtures");
  return d;
}

inline std::filesystem::path model_scratch_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("rlvr_test_model_" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}
