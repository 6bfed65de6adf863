// Dataset fidelity: an integer reference beyond 64 bits is read as its digits, not as a rounded double that
// would make its neighbours verify correct; a null reference is missing, not the text "null".
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "data/dataset.h"

using namespace rlvr;
using namespace rlvr::data;

TEST_CASE("dataset: big integer references keep every digit and null is missing", "[data]") {
  auto p = std::filesystem::temp_directory_path() / "rlvr_exact_refs.jsonl";
  {
    std::ofstream f(p);
    f << "{\"problem\": \"2^64 + 1?\", \"answer\": 18446744073709551617}\n";
    f << "{\"problem\": \"small\", \"answer\": 42}\n";
    f << "{\"problem\": \"none\", \"answer\": null}\n";
  }
  LoadReport rep;
  auto d = load_jsonl(p, {}, &rep);
  REQUIRE(d.size() == 2);
  CHECK(d[0].reference == "18446744073709551617");
  CHECK(d[1].reference == "42");
  CHECK(rep.missing_reference == 1);
  std::filesystem::remove(p);
}
