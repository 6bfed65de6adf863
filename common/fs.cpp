#include "common/fs.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace rlvr {
namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::error_code ec;
  RLVR_CHECK(!fs::is_directory(path, ec), "cannot read '{}': it is a directory, not a file", path.string());
  std::ifstream in(path, std::ios::binary);
  RLVR_CHECK(in.good(), "cannot open '{}' for reading: {}", path.string(), std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  RLVR_CHECK(!in.bad(), "cannot read '{}': {}", path.string(), std::strerror(errno));
  return ss.str();
}

fs::path temporary_name(const fs::path& path) {
  auto tmp = path;
  tmp += fmt::format(".tmp.{}", ::getpid());
  return tmp;
}

bool is_temporary_name(const std::string& name, long* pid) {
  auto pos = name.rfind(".tmp.");
  if (pos == std::string::npos || pos + 5 >= name.size()) return false;
  const std::string digits = name.substr(pos + 5);
  if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) return false;
  if (pid) *pid = std::stol(digits);
  return true;
}

bool process_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

AtomicFile::AtomicFile(fs::path path) : path_(std::move(path)), tmp_(temporary_name(path_)) {
  if (path_.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path_.parent_path(), ec);
    RLVR_CHECK(!ec, "cannot create directory '{}': {}", path_.parent_path().string(), ec.message());
  }
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  RLVR_CHECK(fd_ >= 0, "cannot open '{}' for writing: {}", tmp_.string(), std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (committed_) return;
  if (fd_ >= 0) ::close(fd_);
  ::unlink(tmp_.c_str());
}

void AtomicFile::fail(int err) noexcept {
  if (err_ == 0) err_ = err == 0 ? EIO : err;
}

size_t AtomicFile::write(const void* data, size_t n) noexcept {
  if (err_ != 0 || fd_ < 0) return n;
  const char* p = static_cast<const char*>(data);
  size_t left = n;
  while (left > 0) {
    ssize_t w = ::write(fd_, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {  // 0 bytes on a regular file: no room (report it as ENOSPC rather than loop)
      what_ = "write to";
      fail(w == 0 ? ENOSPC : errno);
      return n;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  return n;
}

void AtomicFile::commit() {
  RLVR_CHECK(!committed_ && fd_ >= 0, "AtomicFile::commit called twice for '{}'", path_.string());
  if (err_ == 0 && ::fsync(fd_) != 0) what_ = "flush of", fail(errno);
  if (::close(fd_) != 0 && err_ == 0) what_ = "close of", fail(errno);
  fd_ = -1;
  if (err_ == 0 && ::rename(tmp_.c_str(), path_.c_str()) != 0) what_ = "rename onto", fail(errno);
  if (err_ != 0) {
    ::unlink(tmp_.c_str());
    throw Error(fmt::format("{} '{}' failed: {}; the previous file (if any) is unchanged", what_, path_.string(),
                            std::strerror(err_)));
  }
  committed_ = true;
}

void write_file_atomic(const fs::path& path, std::string_view content) {
  AtomicFile f(path);
  f.write(content);
  f.commit();
}

CheckedAppender::CheckedAppender(const fs::path& path, bool truncate) : path_(path) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
  RLVR_CHECK(fd_ >= 0, "cannot open '{}' for appending: {}", path.string(), std::strerror(errno));
}

CheckedAppender::CheckedAppender(CheckedAppender&& o) noexcept : path_(std::move(o.path_)), fd_(o.fd_) { o.fd_ = -1; }

CheckedAppender& CheckedAppender::operator=(CheckedAppender&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

CheckedAppender::~CheckedAppender() {
  if (fd_ >= 0) ::close(fd_);
}

void CheckedAppender::append_line(std::string_view line) {
  if (fd_ < 0) return;
  std::string buf(line);
  buf += '\n';
  const char* p = buf.data();
  size_t left = buf.size();
  while (left > 0) {
    ssize_t w = ::write(fd_, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      throw Error(fmt::format("cannot append to '{}': {} ({} of {} bytes of the line written)", path_.string(),
                              std::strerror(w == 0 ? ENOSPC : errno), buf.size() - left, buf.size()));
    p += w;
    left -= static_cast<size_t>(w);
  }
}

void for_each_line(const fs::path& path, const std::function<void(std::string_view, size_t)>& fn) {
  std::error_code ec;
  RLVR_CHECK(!fs::is_directory(path, ec), "cannot read '{}': it is a directory, not a file", path.string());
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
