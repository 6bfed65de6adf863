// TensorBoard writer: CRC-32C against its published check value, TFRecord framing byte by byte, protobuf
// encodings of the Event messages derived by hand from the wire format, and the resume rewrite. That
// TensorBoard's own reader accepts the files is checked end to end in tests/python/tensorboard_reader.sh.
#include <catch2/catch.hpp>

#include <filesystem>

#include "common/fs.h"
#include "common/metrics.h"
#include "common/tensorboard.h"

using namespace rlvr;
namespace fs = std::filesystem;

namespace {
std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}
uint32_t le32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(uint8_t(s[at + i])) << (8 * i);
  return v;
}
}  // namespace

TEST_CASE("crc32c matches the Castagnoli check value and TFRecord masking", "[common]") {
  // RFC 3720 B.4 / the CRC catalogue: CRC-32C("123456789") = 0xE3069283; 32 zero bytes -> 0x8A9136AA.
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  // masked = rotr(crc, 15) + 0xa282ead8: rotr(0xE3069283, 15) = 0x2507C60D; + 0xa282ead8 = 0xC78AB0E5.
  CHECK(masked_crc32c("123456789") == 0xC78AB0E5u);
}

TEST_CASE("tfrecord frame is length + masked crc + payload + masked crc", "[common]") {
  auto r = tfrecord_frame("abc");
  REQUIRE(r.size() == 8 + 4 + 3 + 4);
  CHECK(r.substr(0, 8) == bytes({3, 0, 0, 0, 0, 0, 0, 0}));
  CHECK(le32(r, 8) == masked_crc32c(bytes({3, 0, 0, 0, 0, 0, 0, 0})));
  CHECK(r.substr(12, 3) == "abc");
  CHECK(le32(r, 15) == masked_crc32c("abc"));
}

TEST_CASE("tensorboard events are the hand-derived protobuf bytes", "[common]") {
  // wall_time 0.0: tag 0x09 + 8 zero bytes; step 3: tag 0x10, varint 3; summary: tag 0x2a, length.
  // Value {tag "a" (0a 01 61), simple_value 1.0f (15 00 00 80 3f)} = 8 bytes -> Summary 0a 08 <value>.
  auto e = tb_event_scalars(0.0, 3, {{"a", 1.0}, {"nan", std::nan("")}});
  std::string want = bytes({0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 3, 0x2a, 10, 0x0a, 8, 0x0a, 1, 'a', 0x15, 0, 0, 0x80, 0x3f});
  CHECK(e == want);  // the non-finite value is left out (metrics.jsonl writes it as null)
  // file_version "brain.Event:2": tag 0x1a, length 13.
  CHECK(tb_event_file_version(0.0).substr(9) == bytes({0x1a, 13}) + "brain.Event:2");
  // SessionLog {status START=1} is Event field 7: 3a 02 08 01 after step 5.
  CHECK(tb_event_session_start(0.0, 5).substr(9) == bytes({0x10, 5, 0x3a, 2, 0x08, 1}));
  // A negative step is a 10-byte two's complement varint.
  CHECK(tb_event_scalars(0.0, -1, {}).size() == 9 + 1 + 10 + 2);
}

TEST_CASE("metrics sink mirrors every step to the event file and resume drops orphaned steps", "[common]") {
  auto dir = fs::temp_directory_path() / "rlvr_test_tb";
  fs::remove_all(dir);
  {
    MetricsSink s(dir / "metrics.jsonl");
    s.attach_tensorboard(open_run_tensorboard(dir, 0, "run: {seed: 1}\n"));
    for (int step = 1; step <= 5; ++step) s.write(step, {{"loss", 1.0 / step}});
  }
  auto files = [&] {
    std::vector<fs::path> f;
    for (auto& e : fs::directory_iterator(dir / "tensorboard")) f.push_back(e.path());
    std::sort(f.begin(), f.end());
    return f;
  };
  REQUIRE(files().size() == 1);
  auto first = files()[0];
  // Records: file_version, config text, 5 scalar events.
  auto size_before = fs::file_size(first);
  // Resume from step 3: steps 4 and 5 leave the old file, a second file starts.
  auto tb = std::make_shared<TensorBoardWriter>(dir / "tensorboard", 3);
  REQUIRE(files().size() == 2);
  CHECK(files()[0] == first);  // the new file sorts after the old one
  auto scalars45 = tfrecord_frame(tb_event_scalars(0.0, 4, {{"loss", 0.25}})).size() +
                   tfrecord_frame(tb_event_scalars(0.0, 5, {{"loss", 0.2}})).size();
  CHECK(fs::file_size(first) == size_before - scalars45);
  // Dropping after step 1 removes exactly the frames of steps 2 and 3 from the first file.
  auto scalars23 = tfrecord_frame(tb_event_scalars(0.0, 2, {{"loss", 0.5}})).size() +
                   tfrecord_frame(tb_event_scalars(0.0, 3, {{"loss", 1.0 / 3}})).size();
  CHECK(tb_drop_steps_after(dir / "tensorboard", 1) >= 2);
  CHECK(fs::file_size(first) == size_before - scalars45 - scalars23);
  fs::remove_all(dir);
}
