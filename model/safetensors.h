// safetensors files: a validating, mmap-backed reader (one file, or a directory with sharded
// model.safetensors.index.json) and a writer. Every malformed input is an rlvr::Error naming the file and
// tensor; nothing here trusts a header. Does not know about models (names and shapes are the caller's).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rlvr::model {

struct SafetensorsEntry {
  std::string dtype;            // "F32", "BF16", ... as in the header
  std::vector<int64_t> shape;
  int64_t begin = 0, end = 0;   // byte offsets into the data buffer (after the header), end exclusive
};

// One .safetensors file, memory-mapped read-only. The constructor validates the whole header: length,
// JSON, dtypes, shapes, offsets (contiguous, non-overlapping, exactly covering the buffer).
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  const SafetensorsEntry& entry(const std::string& name) const;

  // A CPU tensor copied out of the mapping, in the stored dtype (undefined dtype) or converted to `dtype`.
  at::Tensor load(const std::string& name, std::optional<at::ScalarType> dtype = std::nullopt) const;
  // Copies the stored tensor into `dst` (any device/dtype); shapes must match exactly.
  void load_into(const std::string& name, at::Tensor& dst) const;

 private:
  at::Tensor view(const std::string& name) const;  // zero-copy (or aligned copy) CPU view in the stored dtype
  std::filesystem::path path_;
  const uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;  // buffer start (after 8 + header bytes)
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint directory: model.safetensors, or shards listed by model.safetensors.index.json.
class SafetensorsDir {
 public:
  explicit SafetensorsDir(const std::filesystem::path& dir);
  std::vector<std::string> names() const;                     // every tensor in the checkpoint, sorted
  bool contains(const std::string& name) const { return where_.count(name) != 0; }
  const SafetensorsFile& file_of(const std::string& name) const;

 private:
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;  // tensor -> index into files_
};

// Size in bytes of one element of a safetensors dtype name; 0 if unknown.
int64_t safetensors_dtype_size(const std::string& dtype);

// Writes tensors (any device; made contiguous on CPU) in the given order, header padded to 8 bytes.
// Writes `path` directly; callers that need atomicity write into a temporary directory.
void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace rlvr::model
