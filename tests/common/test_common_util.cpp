#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "common/config_io.h"
#include "common/fs.h"
#include "common/metrics.h"
#include "common/progress.h"

#include <unistd.h>
#include <cstdio>

using namespace rlvr;

TEST_CASE("edit distance and closest key", "[common]") {
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(closest_key("clip_hgh", {"clip_low", "clip_high", "kl_coef"}) == "clip_high");
  CHECK(closest_key("zzzzzzzz", {"clip_low", "clip_high"}).empty());
}

TEST_CASE("atomic write replaces the file and leaves no temporary", "[common]") {
  auto dir = std::filesystem::temp_directory_path() / "rlvr_test_fs";
  std::filesystem::remove_all(dir);
  write_file_atomic(dir / "a.txt", "one");
  write_file_atomic(dir / "a.txt", "two");
  CHECK(read_file(dir / "a.txt") == "two");
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) (void)e, ++n;
  CHECK(n == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("metrics sink writes one JSON object per step, non-finite as null", "[common]") {
  auto p = std::filesystem::temp_directory_path() / "rlvr_test_metrics.jsonl";
  {
    MetricsSink s(p);
    s.write(1, {{"reward/mean", 0.5}, {"loss", std::nan("")}});
    s.write(2, {{"reward/mean", 0.75}});
  }
  std::string text = read_file(p);
  CHECK(text == "{\"step\":1,\"loss\":null,\"reward/mean\":0.5}\n{\"step\":2,\"reward/mean\":0.75}\n");
  CHECK(MetricsSink::console_line(3, {{"a", 0.123456}}, {{"a", "A"}, {"b", "B"}}) == "step 3 | A 0.1235");
}

TEST_CASE("progress renders done/total, percentage, rate and suffix", "[common]") {
  set_progress_enabled(false);
  Progress p("gen", 4, "completions");
  p.advance(1);
  CHECK_THAT(p.render(), Catch::StartsWith("gen 1/4 (25%) "));
  CHECK_THAT(p.render(), Catch::Contains(" completions/s"));
  p.set(3, "120 tok/s");
  CHECK_THAT(p.render(), Catch::StartsWith("gen 3/4 (75%) ") && Catch::EndsWith(" 120 tok/s"));
  Progress unknown("scan", 0, "files");
  unknown.advance(7);
  CHECK_THAT(unknown.render(), Catch::StartsWith("scan 7 ") && !Catch::Contains("ETA"));
  set_progress_enabled(true);
}

TEST_CASE("progress on a non-terminal prints plain lines of the nested displays", "[common]") {
  // stderr to a file: the plain mode with interval 0 prints one line per update, outer display first.
  auto path = std::filesystem::temp_directory_path() / "rlvr_test_progress.txt";
  fflush(stderr);
  int saved = dup(fileno(stderr));
  REQUIRE(freopen(path.c_str(), "w", stderr) != nullptr);
  set_progress_terminal(false);
  set_progress_interval(0.0);
  {
    Progress outer("train", 2, "steps");
    Progress inner("generate", 8, "completions");
    inner.set(8, "5 tok/s");
    inner.finish();
    outer.advance();
    set_progress_enabled(false);
    outer.advance();  // silenced
    set_progress_enabled(true);
  }
  fflush(stderr);
  dup2(saved, fileno(stderr));
  close(saved);
  set_progress_interval(30.0);
  auto text = read_file(path);
  std::vector<std::string> lines;
  for (size_t i = 0, j; (j = text.find('\n', i)) != std::string::npos; i = j + 1) lines.push_back(text.substr(i, j - i));
  REQUIRE(lines.size() == 4);  // outer created, inner created, inner set, outer advanced (not the silenced one)
  CHECK_THAT(lines[0], Catch::StartsWith("train 0/2 (0%)"));
  CHECK_THAT(lines[2], Catch::StartsWith("train 0/2 (0%)") && Catch::Contains(" | generate 8/8 (100%)") &&
                           Catch::EndsWith("5 tok/s"));
  CHECK_THAT(lines[3], Catch::StartsWith("train 1/2 (50%)") && !Catch::Contains("generate"));
  CHECK(text.find('\r') == std::string::npos);  // no terminal control characters in logs
}

#include "common/plot.h"

TEST_CASE("PNG encoder: signature, IHDR geometry and chunk CRCs", "[common]") {
  std::vector<unsigned char> rgb(3 * 2 * 2, 0);
  rgb[0] = 255;  // top-left red
  auto png = encode_png_rgb(rgb, 2, 2);
  REQUIRE(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  CHECK(png.substr(12, 4) == "IHDR");
  auto u32 = [&](size_t at) {
    return (uint32_t(uint8_t(png[at])) << 24) | (uint32_t(uint8_t(png[at + 1])) << 16) |
           (uint32_t(uint8_t(png[at + 2])) << 8) | uint32_t(uint8_t(png[at + 3]));
  };
  CHECK(u32(16) == 2);  // width
  CHECK(u32(20) == 2);  // height
  // CRC of the IHDR chunk (type + 13 data bytes) for a 2x2 8-bit RGB image, from zlib.crc32 in Python.
  CHECK(u32(29) == 0xFDD49A73u);
  CHECK(png.substr(png.size() - 8, 4) == "IEND");
}

TEST_CASE("line plot writes a PNG file", "[common]") {
  auto p = std::filesystem::temp_directory_path() / "rlvr_test_plot.png";
  write_line_plot(p, "reward", "step", {{"reward", {0, 1, 2}, {0.1, 0.5, 0.9}, 0xff0000, true}});
  auto s = read_file(p);
  CHECK(s.size() > 800 * 480 * 3);  // stored blocks: at least the raw pixels
  CHECK(s.substr(1, 3) == "PNG");
}
