// TensorBoard event files without a protobuf dependency: TFRecord framing (length, masked CRC-32C, payload,
// masked CRC-32C) around hand-encoded tensorflow.Event messages (scalars as Summary.Value.simple_value, text
// through the "text" plugin). It writes; it does not read summaries back beyond the step numbers it needs to
// drop orphaned steps on resume.
//
// Resume: a new event file per launch, after older files in the directory have been rewritten without the
// steps after the checkpoint (what metrics.jsonl does too), plus a SessionLog START at the first new step,
// TensorBoard's own restart marker. Any reader then sees each step once.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace rlvr {

// CRC-32C (Castagnoli), and the rotation + constant TFRecord stores ("masked").
uint32_t crc32c(std::string_view data);
uint32_t masked_crc32c(std::string_view data);

// One TFRecord: u64 length, u32 masked crc(length), payload, u32 masked crc(payload); all little-endian.
std::string tfrecord_frame(std::string_view payload);

// Encoded tensorflow.Event messages (wall_time in seconds since the epoch).
std::string tb_event_file_version(double wall_time);
std::string tb_event_scalars(double wall_time, int64_t step, const std::map<std::string, double>& scalars);
std::string tb_event_text(double wall_time, int64_t step, const std::string& tag, const std::string& text);
std::string tb_event_session_start(double wall_time, int64_t step);

// Rewrites every event file in `dir` without the records whose step is > `max_step` (temp file + rename);
// returns how many records were dropped. A file that is not a valid TFRecord stream is left as it is.
int64_t tb_drop_steps_after(const std::filesystem::path& dir, int64_t max_step);

class TensorBoardWriter {
 public:
  // Opens a new events.out.tfevents.* file in `dir` (created). `resumed_step` > 0: orphaned steps after it are
  // dropped from older files first and a SessionLog START marks step resumed_step + 1.
  TensorBoardWriter(const std::filesystem::path& dir, int64_t resumed_step = 0);
  // Every finite value as a scalar at `step`; flushed.
  void add_scalars(int64_t step, const std::map<std::string, double>& scalars);
  void add_text(int64_t step, const std::string& tag, const std::string& text);
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(const std::string& event);
  std::filesystem::path path_;
  std::ofstream out_;
};

// The writer of a training run: <run_dir>/tensorboard/, with the resolved config as the text "config" at the
// first step this launch writes (0, or resumed_step + 1).
std::shared_ptr<TensorBoardWriter> open_run_tensorboard(const std::filesystem::path& run_dir, int64_t resumed_step,
                                                        const std::string& config_yaml);

}  // namespace rlvr
