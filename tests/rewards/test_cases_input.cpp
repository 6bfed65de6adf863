// `rlvr verify --cases` input fidelity: what a case line says is what gets verified. A JSON null is not the
// text "null", an integer beyond 64 bits keeps its digits, and a verifier config field with the wrong type is
// an error for that case (not a silent fallback to the defaults).
#include <catch2/catch.hpp>

#include <sstream>

#include "common/json_exact.h"
#include "rewards/cases.h"

using namespace rlvr;
using namespace rlvr::rewards;

namespace {
struct Run {
  int rc = 0;
  std::vector<nlohmann::json> lines;
  std::string err;
};
Run run(const std::string& input) {
  std::istringstream in(input);
  std::ostringstream out, err;
  Run r;
  r.rc = run_cases(in, out, err, 1, {});
  std::istringstream o(out.str());
  for (std::string l; std::getline(o, l);) r.lines.push_back(nlohmann::json::parse(l));
  r.err = err.str();
  return r;
}
}  // namespace

TEST_CASE("verify cases: a null gold is an error and never equals the text null", "[rewards][cases]") {
  auto r = run("{\"gold\": null, \"pred\": \"null\"}\n{\"gold\": \"null\", \"pred\": null}\n{\"gold\": \"4\", \"pred\": \"4\"}\n");
  REQUIRE(r.lines.size() == 3);
  CHECK(r.lines[0]["verdict"] == "ungradable");
  CHECK(r.lines[0]["error"] == "gold must be a string or a number, got null");
  CHECK(r.lines[1]["verdict"] == "ungradable");
  CHECK(r.lines[1]["error"] == "pred must be a string or a number, got null");
  CHECK(r.lines[2]["verdict"] == "correct");
  CHECK(r.rc == 1);  // bad input lines fail the command
}

TEST_CASE("verify cases: integers beyond 2^64 keep their digits", "[rewards][cases]") {
  // 2^64 + 1 and 2^64 are the same double; as JSON numbers they must still differ.
  auto r = run("{\"gold\": 18446744073709551617, \"pred\": \"\\\\boxed{18446744073709551616}\"}\n"
               "{\"gold\": 18446744073709551617, \"pred\": \"\\\\boxed{18446744073709551617}\"}\n"
               "{\"gold\": 123456789012345678901234567890, \"pred\": 123456789012345678901234567891}\n");
  REQUIRE(r.lines.size() == 3);
  CHECK(r.lines[0]["verdict"] == "wrong");
  CHECK(r.lines[1]["verdict"] == "correct");
  CHECK(r.lines[2]["verdict"] == "wrong");
  CHECK(r.rc == 0);
  // The parser itself: big integer literals become their digits, everything else is unchanged.
  auto j = parse_json_exact("{\"a\": 18446744073709551617, \"b\": 18446744073709551615, \"c\": 1.5, \"d\": -3}");
  CHECK(j["a"] == "18446744073709551617");
  CHECK(j["b"].get<uint64_t>() == 18446744073709551615ull);
  CHECK(j["c"].get<double>() == 1.5);
  CHECK(j["d"].get<int64_t>() == -3);
}

TEST_CASE("verify cases: an invalid per-case config is an error for that case", "[rewards][cases]") {
  auto r = run("{\"gold\": \"0.5\", \"pred\": \"0.5\", \"config\": {\"float_rounding\": \"six\"}}\n"
               "{\"gold\": \"0.5\", \"pred\": \"0.5\", \"config\": {\"strict\": \"yes\"}}\n"
               "{\"gold\": \"0.5\", \"pred\": \"0.5\", \"config\": {\"extraction_config\": \"LatexExtractionConfig()\"}}\n"
               "{\"gold\": \"0.5\", \"pred\": \"0.5\", \"config\": [1]}\n"
               "{\"gold\": \"0.5\", \"pred\": \"0.5\", \"config\": {\"float_rounding\": 3, \"notes\": \"peer field\"}}\n"
               "{\"gold\": \"0.5\", \"pred\": \"0.5\", \"config\": null}\n");
  REQUIRE(r.lines.size() == 6);
  CHECK(r.lines[0]["error"] == "config.float_rounding must be an integer in [0, 17], got \"six\"");
  CHECK(r.lines[1]["error"] == "config.strict must be true or false, got \"yes\"");
  CHECK(r.lines[2]["error"] == "config.extraction_config must be a list of strings, got \"LatexExtractionConfig()\"");
  CHECK(r.lines[3]["error"] == "config must be an object (or null), got array");
  for (int i = 0; i < 4; ++i) CHECK(r.lines[i]["verdict"] == "ungradable");
  // Valid configs (fields the verifier does not read are a peer's notes) and null still verify.
  CHECK(r.lines[4]["verdict"] == "correct");
  CHECK(r.lines[5]["verdict"] == "correct");
  CHECK(r.rc == 1);
}

TEST_CASE("verify cases: a huge bad line is reported in a few hundred bytes", "[rewards][cases]") {
  auto r = run("{\"gold\": " + std::string(20 << 20, '7') + "x}\n");
  REQUIRE(r.lines.size() == 1);
  CHECK(r.lines[0]["error"].get<std::string>().size() < 400);
  CHECK(r.err.size() < 1000);
}
