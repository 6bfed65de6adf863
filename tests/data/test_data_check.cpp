// `rlvr data check` core: counts, duplicates, over-long prompts, gradable references, filtered output.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "common/fs.h"
#include "data/data_check.h"

using namespace rlvr;
using namespace rlvr::data;
namespace fs = std::filesystem;

TEST_CASE("data check counts issues and writes the filtered file", "[data]") {
  auto dir = fs::temp_directory_path() / "rlvr_test_data_check";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto in = dir / "in.jsonl";
  std::ofstream(in, std::ios::binary)
      << "{\"problem\": \"What is 1+1?\", \"answer\": \"2\"}\n"        // 1 kept
      << "{\"problem\": \"What  is 1+1? \", \"answer\": \"2\"}\n"      // 2 duplicate (whitespace)
      << "not json\n"                                                  // 3 invalid
      << "{\"problem\": \"Long " << std::string(50, 'x') << "\", \"answer\": \"3\"}\n"  // 4 over-long
      << "{\"problem\": \"Q5\"}\n"                                     // 5 missing reference
      << "{\"problem\": \"Q6\", \"answer\": \"???\"}\n"               // 6 not gradable
      << "{\"question\": \"Q7 \xC3\xA9\", \"answer\": \"#### 1,000\"}\n";  // 7 kept (é: one char)
  CheckOptions o;
  o.max_prompt_chars = 20;
  o.reference_gradable = [](const std::string& r) { return r != "???"; };
  o.output = dir / "out.jsonl";
  auto rep = check_dataset(in, o);
  CHECK(rep.lines == 7);
  CHECK(rep.invalid_json == 1);
  CHECK(rep.missing_reference == 1);
  CHECK(rep.missing_prompt == 0);
  CHECK(rep.records == 5);
  CHECK(rep.gradable == 4);
  CHECK(rep.duplicates == 1);
  CHECK(rep.over_long == 1);
  CHECK(rep.max_prompt_length == 55);
  CHECK(rep.written == 2);
  CHECK(read_file(o.output) ==
        "{\"problem\": \"What is 1+1?\", \"answer\": \"2\"}\n"
        "{\"question\": \"Q7 \xC3\xA9\", \"answer\": \"#### 1,000\"}\n");
  CHECK_THAT(rep.text(), Catch::Contains("line 2: duplicate prompt of line 1"));
  CHECK_THAT(rep.text(), Catch::Contains("line 3: invalid JSON"));
  CHECK(rep.to_json()["duplicates"] == 1);
  CHECK(utf8_length("Q7 \xC3\xA9") == 4);

  CheckOptions t;  // tokens instead of characters; no verifier, no output
  t.count_tokens = [](const Record& r) { return static_cast<int64_t>(r.prompt.size() / 4); };
  t.max_prompt_tokens = 5;
  auto rt = check_dataset(in, t);
  CHECK(rt.length_unit == "tokens");
  CHECK(rt.over_long == 1);
  CHECK(rt.gradable == -1);
  CHECK(rt.written == -1);
  fs::remove_all(dir);
}

TEST_CASE("data check on GSM8K test: clean", "[data][real]") {
  fs::path p = fs::path(RLVR_SHARED_DATA) / "gsm8k_test.jsonl";
  if (!fs::exists(p)) {
    WARN("SKIPPED: " << p.string() << " is absent (real-data test needs /work/shared/data)");
    return;
  }
  CheckOptions o;
  o.max_prompt_chars = 4096;
  auto rep = check_dataset(p, o);
  CHECK(rep.records == 1319);
  CHECK(rep.invalid_json == 0);
  CHECK(rep.over_long == 0);
}
