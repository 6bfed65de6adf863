// safetensors read (mmap, validated header) and write. Format: u64 LE header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the buffer.
// The validation mirrors the reference implementation: header <= 100 MB, offsets contiguous and covering.
#include "model/safetensors.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/fs.h"

namespace rlvr::model {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxHeader = 100'000'000;  // the reference reader's limit

struct DtypeInfo {
  const char* name;
  int64_t size;
  std::optional<at::ScalarType> torch;
};

const std::vector<DtypeInfo>& dtype_table() {
  static const std::vector<DtypeInfo> t = {
      {"BOOL", 1, at::kBool},     {"U8", 1, at::kByte},        {"I8", 1, at::kChar},
      {"F8_E5M2", 1, at::kFloat8_e5m2}, {"F8_E4M3", 1, at::kFloat8_e4m3fn}, {"I16", 2, at::kShort},
      {"U16", 2, std::nullopt},   {"F16", 2, at::kHalf},       {"BF16", 2, at::kBFloat16},
      {"I32", 4, at::kInt},       {"U32", 4, std::nullopt},    {"F32", 4, at::kFloat},
      {"F64", 8, at::kDouble},    {"I64", 8, at::kLong},       {"U64", 8, std::nullopt},
  };
  return t;
}

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : dtype_table())
    if (name == d.name) return &d;
  return nullptr;
}

std::string dtype_name(at::ScalarType t) {
  for (const auto& d : dtype_table())
    if (d.torch && *d.torch == t) return d.name;
  throw Error(fmt::format("safetensors: cannot store dtype {}", c10::toString(t)));
}

}  // namespace

int64_t safetensors_dtype_size(const std::string& dtype) {
  const auto* d = find_dtype(dtype);
  return d ? d->size : 0;
}

SafetensorsFile::SafetensorsFile(const fs::path& path) : path_(path) {
  const std::string p = path.string();
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  RLVR_CHECK(fd >= 0, "cannot open safetensors file '{}': {}", p, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(fmt::format("'{}' is not a regular file", p));
  }
  map_size_ = static_cast<size_t>(st.st_size);
  if (map_size_ < 8) {
    ::close(fd);
    throw Error(fmt::format("safetensors file '{}' is truncated: {} bytes, less than the 8-byte header length",
                            p, map_size_));
  }
  void* m = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  RLVR_CHECK(m != MAP_FAILED, "cannot mmap '{}': {}", p, std::strerror(errno));
  map_ = static_cast<const uint8_t*>(m);

  try {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | map_[i];  // little-endian u64
    RLVR_CHECK(n <= kMaxHeader, "safetensors file '{}': header length {} exceeds the {} byte limit (corrupt file?)",
               p, n, kMaxHeader);
    RLVR_CHECK(8 + n <= map_size_, "safetensors file '{}' is truncated: header says {} bytes, file has {} after the length",
               p, n, map_size_ - 8);
    data_ = map_ + 8 + n;
    const uint64_t buffer = map_size_ - 8 - n;
    json h = json::parse(reinterpret_cast<const char*>(map_ + 8), reinterpret_cast<const char*>(map_ + 8 + n),
                         nullptr, /*allow_exceptions=*/false);
    RLVR_CHECK(!h.is_discarded(), "safetensors file '{}': header is not valid JSON", p);
    RLVR_CHECK(h.is_object(), "safetensors file '{}': header is not a JSON object", p);
    std::vector<std::pair<int64_t, std::string>> order;  // (begin, name)
    for (auto it = h.begin(); it != h.end(); ++it) {
      const std::string& name = it.key();
      const json& e = it.value();
      if (name == "__metadata__") {
        RLVR_CHECK(e.is_object(), "safetensors file '{}': __metadata__ is not an object", p);
        for (auto m2 = e.begin(); m2 != e.end(); ++m2) {
          RLVR_CHECK(m2.value().is_string(), "safetensors file '{}': __metadata__ value '{}' is not a string", p,
                     m2.key());
          metadata_[m2.key()] = m2.value().get<std::string>();
        }
        continue;
      }
      RLVR_CHECK(e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"),
                 "safetensors file '{}': tensor '{}' lacks dtype/shape/data_offsets", p, name);
      SafetensorsEntry en;
      RLVR_CHECK(e["dtype"].is_string(), "safetensors file '{}': tensor '{}' dtype is not a string", p, name);
      en.dtype = e["dtype"].get<std::string>();
      const auto* di = find_dtype(en.dtype);
      RLVR_CHECK(di != nullptr, "safetensors file '{}': tensor '{}' has unknown dtype '{}'", p, name, en.dtype);
      RLVR_CHECK(e["shape"].is_array(), "safetensors file '{}': tensor '{}' shape is not an array", p, name);
      uint64_t numel = 1;
      for (const auto& d : e["shape"]) {
        RLVR_CHECK(d.is_number_unsigned(), "safetensors file '{}': tensor '{}' has a non-integer or negative dim", p,
                   name);
        uint64_t v = d.get<uint64_t>();
        RLVR_CHECK(v < (1ULL << 40) && (v == 0 || numel <= (1ULL << 50) / v),
                   "safetensors file '{}': tensor '{}' shape is too large", p, name);
        numel *= v;
        en.shape.push_back(static_cast<int64_t>(v));
      }
      const json& off = e["data_offsets"];
      RLVR_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
                 "safetensors file '{}': tensor '{}' data_offsets is not [begin, end]", p, name);
      uint64_t b = off[0].get<uint64_t>(), en_ = off[1].get<uint64_t>();
      RLVR_CHECK(b <= en_ && en_ <= buffer,
                 "safetensors file '{}': tensor '{}' offsets [{}, {}] out of range (buffer {} bytes; truncated file?)",
                 p, name, b, en_, buffer);
      RLVR_CHECK(en_ - b == numel * static_cast<uint64_t>(di->size),
                 "safetensors file '{}': tensor '{}' has {} bytes but shape x {} needs {}", p, name, en_ - b, en.dtype,
                 numel * di->size);
      en.begin = static_cast<int64_t>(b);
      en.end = static_cast<int64_t>(en_);
      order.emplace_back(en.begin, name);
      entries_.emplace(name, std::move(en));
    }
    std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b2) {
      return a.first != b2.first ? a.first < b2.first : entries_[a.second].end < entries_[b2.second].end;
    });
    int64_t at = 0;
    for (const auto& [b, name] : order) {
      RLVR_CHECK(b == at, "safetensors file '{}': tensor '{}' starts at byte {}, expected {} (overlapping or gap)", p,
                 name, b, at);
      at = entries_[name].end;
    }
    RLVR_CHECK(static_cast<uint64_t>(at) == buffer,
               "safetensors file '{}': tensors cover {} bytes of the {} byte buffer (truncated or trailing data)", p,
               at, buffer);
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(map_), map_size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), map_size_);
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  RLVR_CHECK(it != entries_.end(), "safetensors file '{}' has no tensor '{}'", path_.string(), name);
  return it->second;
}

at::Tensor SafetensorsFile::view(const std::string& name) const {
  const auto& e = entry(name);
  const auto* di = find_dtype(e.dtype);
  RLVR_CHECK(di->torch.has_value(), "safetensors file '{}': tensor '{}' has dtype {} which is not supported here",
             path_.string(), name, e.dtype);
  const uint8_t* ptr = data_ + e.begin;
  auto opts = at::TensorOptions().dtype(*di->torch).device(at::kCPU);
  if (reinterpret_cast<uintptr_t>(ptr) % di->size == 0)
    return at::from_blob(const_cast<uint8_t*>(ptr), e.shape, opts);  // read-only: callers copy out of it
  auto t = at::empty(e.shape, opts);  // unaligned (header not padded): copy to aligned memory first
  std::memcpy(t.data_ptr(), ptr, static_cast<size_t>(e.end - e.begin));
  return t;
}

at::Tensor SafetensorsFile::load(const std::string& name, std::optional<at::ScalarType> dtype) const {
  auto v = view(name);
  return dtype ? v.to(*dtype, /*non_blocking=*/false, /*copy=*/true) : v.clone();
}

void SafetensorsFile::load_into(const std::string& name, at::Tensor& dst) const {
  auto v = view(name);
  RLVR_CHECK(v.sizes() == dst.sizes(), "safetensors file '{}': tensor '{}' has shape {}, the model expects {}",
             path_.string(), name, c10::str(v.sizes()), c10::str(dst.sizes()));
  at::NoGradGuard ng;
  dst.copy_(v);
}

SafetensorsDir::SafetensorsDir(const fs::path& dir) : dir_(dir) {
  const auto index = dir / "model.safetensors.index.json";
  std::vector<std::string> files;
  std::map<std::string, std::string> listed;  // tensor -> file, from the index
  if (fs::exists(index)) {
    json j = json::parse(read_file(index), nullptr, false);
    RLVR_CHECK(!j.is_discarded() && j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
               "'{}' is not a valid index (needs a weight_map object)", index.string());
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      RLVR_CHECK(it.value().is_string(), "'{}': weight_map['{}'] is not a file name", index.string(), it.key());
      const auto f = it.value().get<std::string>();
      RLVR_CHECK(f.find('/') == std::string::npos && f != ".." && !f.empty(),
                 "'{}': weight_map['{}'] = '{}' is not a plain file name", index.string(), it.key(), f);
      listed[it.key()] = f;
      if (std::find(files.begin(), files.end(), f) == files.end()) files.push_back(f);
    }
    std::sort(files.begin(), files.end());
  } else {
    RLVR_CHECK(fs::exists(dir / "model.safetensors"),
               "no model.safetensors or model.safetensors.index.json in '{}' (only safetensors checkpoints are "
               "supported; convert .bin with transformers' save_pretrained)",
               dir.string());
    files.push_back("model.safetensors");
  }
  for (const auto& f : files) {
    files_.push_back(std::make_unique<SafetensorsFile>(dir / f));
    for (const auto& [name, e] : files_.back()->entries()) {
      (void)e;
      RLVR_CHECK(!where_.count(name), "tensor '{}' appears in both '{}' and '{}'", name,
                 files_[where_[name]]->path().string(), (dir / f).string());
      if (!listed.empty()) {
        auto it = listed.find(name);
        RLVR_CHECK(it != listed.end() && it->second == f, "tensor '{}' is in '{}' but the index maps it to '{}'",
                   name, (dir / f).string(), it == listed.end() ? std::string("nothing") : it->second);
      }
      where_[name] = files_.size() - 1;
    }
  }
  for (const auto& [name, f] : listed)
    RLVR_CHECK(where_.count(name), "index '{}' lists tensor '{}' in '{}' but that file does not contain it",
               index.string(), name, f);
}

std::vector<std::string> SafetensorsDir::names() const {
  std::vector<std::string> out;
  for (const auto& [n, i] : where_) out.push_back(n), (void)i;
  return out;
}

const SafetensorsFile& SafetensorsDir::file_of(const std::string& name) const {
  auto it = where_.find(name);
  RLVR_CHECK(it != where_.end(), "checkpoint '{}' has no tensor '{}'", dir_.string(), name);
  return *files_[it->second];
}

void write_safetensors(const fs::path& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  std::vector<at::Tensor> cpu;
  int64_t off = 0;
  for (const auto& [name, t] : tensors) {
    RLVR_CHECK(name != "__metadata__" && !h.contains(name), "write_safetensors: duplicate or reserved name '{}'",
               name);
    cpu.push_back(t.detach().to(at::kCPU).contiguous());
    const int64_t nbytes = cpu.back().numel() * static_cast<int64_t>(cpu.back().element_size());
    h[name] = {{"dtype", dtype_name(t.scalar_type())}, {"shape", t.sizes().vec()}, {"data_offsets", {off, off + nbytes}}};
    off += nbytes;
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  AtomicFile out(path);  // every write checked; a failure names the file and removes the temporary
  uint8_t len[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
  out.write(len, 8);
  out.write(header);
  for (const auto& t : cpu) out.write(t.data_ptr(), static_cast<size_t>(t.numel() * t.element_size()));
  out.commit();
}

}  // namespace rlvr::model
