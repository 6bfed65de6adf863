#include "common/fs.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/error.h"

namespace rlvr {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  RLVR_CHECK(in.good(), "cannot open '{}' for reading", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file_atomic(const std::filesystem::path& path, std::string_view content) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  auto tmp = path;
  tmp += fmt::format(".tmp.{}", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    RLVR_CHECK(out.good(), "cannot open '{}' for writing", tmp.string());
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    RLVR_CHECK(out.good(), "write to '{}' failed (disk full?)", tmp.string());
  }
  std::filesystem::rename(tmp, path);
}

void for_each_line(const std::filesystem::path& path,
                   const std::function<void(std::string_view, size_t)>& fn) {
  std::ifstream in(path, std::ios::binary);
  RLVR_CHECK(in.good(), "cannot open '{}' for reading", path.string());
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    fn(line, n);
  }
}

}  // namespace rlvr
