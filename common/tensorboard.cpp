// TensorBoard event writer (see tensorboard.h). Field numbers are those of tensorflow/core/util/event.proto,
// framework/summary.proto and framework/tensor.proto:
//   Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
//           SessionLog session_log = 7; }                    SessionLog { Status status = 1; }  START = 1
//   Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; TensorProto tensor = 8;
//           SummaryMetadata metadata = 9; }  SummaryMetadata { PluginData plugin_data = 1; }
//   PluginData { string plugin_name = 1; }   TensorProto { DataType dtype = 1; TensorShapeProto tensor_shape = 2;
//           repeated bytes string_val = 8; }  DT_STRING = 7
#include "common/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/fs.h"

namespace rlvr {
namespace {

// Protobuf wire format: tag = field << 3 | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
void put_varint(std::string& s, uint64_t v) {
  while (v >= 0x80) {
    s.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
}
void put_tag(std::string& s, int field, int wire) { put_varint(s, (static_cast<uint64_t>(field) << 3) | wire); }
void put_le(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_bytes(std::string& s, int field, std::string_view b) {
  put_tag(s, field, 2);
  put_varint(s, b.size());
  s.append(b);
}
void put_double(std::string& s, int field, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, 8);
  put_tag(s, field, 1);
  put_le(s, bits, 8);
}
void put_float(std::string& s, int field, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  put_tag(s, field, 5);
  put_le(s, bits, 4);
}
void put_int(std::string& s, int field, int64_t v) {
  put_tag(s, field, 0);
  put_varint(s, static_cast<uint64_t>(v));  // int64: two's complement, 10 bytes when negative
}

std::string event_head(double wall_time, int64_t step) {
  std::string e;
  put_double(e, 1, wall_time);
  put_int(e, 2, step);
  return e;
}

uint64_t get_le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

// The step of an encoded Event (0 when it has none), or -1 when the bytes are not a well-formed message.
int64_t event_step(std::string_view e) {
  size_t i = 0;
  int64_t step = 0;
  auto varint = [&](uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64 && i < e.size(); shift += 7) {
      auto b = static_cast<unsigned char>(e[i++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  while (i < e.size()) {
    uint64_t tag, v;
    if (!varint(tag)) return -1;
    switch (tag & 7) {
      case 0:
        if (!varint(v)) return -1;
        if ((tag >> 3) == 2) step = static_cast<int64_t>(v);
        break;
      case 1: i += 8; break;
      case 5: i += 4; break;
      case 2:
        if (!varint(v) || v > e.size() - i) return -1;
        i += v;
        break;
      default: return -1;
    }
    if (i > e.size()) return -1;
  }
  return step;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool is_event_file(const std::filesystem::path& p) {
  return p.filename().string().find("tfevents") != std::string::npos && std::filesystem::is_regular_file(p);
}

}  // namespace

uint32_t crc32c(std::string_view data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;  // reflected Castagnoli
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t masked_crc32c(std::string_view data) {
  uint32_t c = crc32c(data);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string tfrecord_frame(std::string_view payload) {
  std::string len;
  put_le(len, payload.size(), 8);
  std::string r = len;
  put_le(r, masked_crc32c(len), 4);
  r.append(payload);
  put_le(r, masked_crc32c(payload), 4);
  return r;
}

std::string tb_event_file_version(double wall_time) {
  std::string e;
  put_double(e, 1, wall_time);
  put_bytes(e, 3, "brain.Event:2");
  return e;
}

std::string tb_event_scalars(double wall_time, int64_t step, const std::map<std::string, double>& scalars) {
  std::string summary;
  for (const auto& [tag, v] : scalars) {
    if (!std::isfinite(v)) continue;  // metrics.jsonl writes null; TensorBoard would plot a spike
    std::string value;
    put_bytes(value, 1, tag);
    put_float(value, 2, static_cast<float>(v));
    put_bytes(summary, 1, value);
  }
  std::string e = event_head(wall_time, step);
  put_bytes(e, 5, summary);
  return e;
}

std::string tb_event_text(double wall_time, int64_t step, const std::string& tag, const std::string& text) {
  std::string plugin, meta, tensor, value, summary;
  put_bytes(plugin, 1, "text");
  put_bytes(meta, 1, plugin);
  put_int(tensor, 1, 7);          // DT_STRING
  put_bytes(tensor, 2, "");       // scalar shape
  put_bytes(tensor, 8, text);
  put_bytes(value, 1, tag);
  put_bytes(value, 8, tensor);
  put_bytes(value, 9, meta);
  put_bytes(summary, 1, value);
  std::string e = event_head(wall_time, step);
  put_bytes(e, 5, summary);
  return e;
}

std::string tb_event_session_start(double wall_time, int64_t step) {
  std::string log;
  put_int(log, 1, 1);  // SessionLog.START
  std::string e = event_head(wall_time, step);
  put_bytes(e, 7, log);
  return e;
}

int64_t tb_drop_steps_after(const std::filesystem::path& dir, int64_t max_step) {
  if (!std::filesystem::is_directory(dir)) return 0;
  int64_t dropped_total = 0;
  for (const auto& ent : std::filesystem::directory_iterator(dir)) {
    if (!is_event_file(ent.path())) continue;
    std::string data = read_file(ent.path());
    std::string kept;
    int64_t dropped = 0;
    bool valid = true;
    for (size_t i = 0; i < data.size();) {
      if (data.size() - i < 12) { valid = false; break; }
      uint64_t len = get_le(data.data() + i, 8);
      if (len > data.size() - i - 16) { valid = false; break; }
      std::string_view rec(data.data() + i, 16 + len);
      std::string_view payload = rec.substr(12, len);
      int64_t step = event_step(payload);
      if (step < 0) { valid = false; break; }
      if (step > max_step) ++dropped;
      else kept.append(rec);
      i += rec.size();
    }
    if (!valid || dropped == 0) continue;
    write_file_atomic(ent.path(), kept);
    dropped_total += dropped;
  }
  return dropped_total;
}

TensorBoardWriter::TensorBoardWriter(const std::filesystem::path& dir, int64_t resumed_step) {
  std::filesystem::create_directories(dir);
  if (resumed_step > 0) tb_drop_steps_after(dir, resumed_step);
  // TensorBoard reads the files of a directory in name order: the new file's timestamp field is made larger
  // than every existing one, so a quick relaunch (same second) still sorts after the run it continues.
  auto secs = static_cast<int64_t>(now_s());
  for (const auto& ent : std::filesystem::directory_iterator(dir)) {
    auto name = ent.path().filename().string();
    const std::string pre = "events.out.tfevents.";
    if (name.rfind(pre, 0) != 0) continue;
    secs = std::max<int64_t>(secs, std::atoll(name.c_str() + pre.size()) + 1);
  }
  char host[256] = "localhost";
  ::gethostname(host, sizeof(host) - 1);
  path_ = dir / fmt::format("events.out.tfevents.{:010d}.{}.{}.rlvr", secs, host, ::getpid());
  out_.open(path_, std::ios::binary | std::ios::app);
  RLVR_CHECK(out_.good(), "cannot open TensorBoard event file '{}'", path_.string());
  write_record(tb_event_file_version(now_s()));
  if (resumed_step > 0) write_record(tb_event_session_start(now_s(), resumed_step + 1));
}

void TensorBoardWriter::write_record(const std::string& event) {
  out_ << tfrecord_frame(event);
  out_.flush();
  RLVR_CHECK(out_.good(), "write to TensorBoard event file '{}' failed (disk full?)", path_.string());
}

void TensorBoardWriter::add_scalars(int64_t step, const std::map<std::string, double>& scalars) {
  write_record(tb_event_scalars(now_s(), step, scalars));
}

void TensorBoardWriter::add_text(int64_t step, const std::string& tag, const std::string& text) {
  write_record(tb_event_text(now_s(), step, tag, text));
}

std::shared_ptr<TensorBoardWriter> open_run_tensorboard(const std::filesystem::path& run_dir, int64_t resumed_step,
                                                        const std::string& config_yaml) {
  auto tb = std::make_shared<TensorBoardWriter>(run_dir / "tensorboard", resumed_step);
  // The text plugin renders Markdown: indent by four spaces so that the YAML shows as a code block.
  std::string md;
  size_t i = 0;
  while (i < config_yaml.size()) {
    size_t j = config_yaml.find('\n', i);
    if (j == std::string::npos) j = config_yaml.size();
    md += "    " + config_yaml.substr(i, j - i) + "\n";
    i = j + 1;
  }
  tb->add_text(resumed_step > 0 ? resumed_step + 1 : 0, "config", md);
  return tb;
}

}  // namespace rlvr
