// Small file helpers: read a whole file, write atomically (temporary name, then rename) with every write
// checked, JSONL lines. Every file rlvr writes into a run directory goes through AtomicFile, so a full disk or
// an I/O error is one clear error naming the file (with the OS reason), the temporary is removed, and the
// previous file under the final name stays intact.
#pragma once
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace rlvr {

// The whole file; an Error naming the path when it cannot be opened or is a directory.
std::string read_file(const std::filesystem::path& path);

// The temporary name AtomicFile writes before the rename: "<path>.tmp.<pid>". Left behind only when the
// process is killed mid-write; is_temporary_name() recognises it so that a later run can clean it up.
std::filesystem::path temporary_name(const std::filesystem::path& path);
// True for "<anything>.tmp.<digits>" (the temporary names above), with the pid stored in *pid when given.
bool is_temporary_name(const std::string& filename, long* pid = nullptr);
// True when `pid` names a live process on this host (a temporary of a running process must not be removed).
bool process_alive(long pid);

// A file written under its temporary name and renamed over `path` by commit(). write() never throws (it can
// sit inside a foreign library's write callback): the first failure is remembered, later writes are skipped,
// and commit() reports it. Destroyed without commit() (an exception, a failed write): the temporary is removed.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path path);  // creates parent directories; Error if it cannot open
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();
  // Appends n bytes; returns n (so that callers' "bytes written" checks never throw mid-stream).
  size_t write(const void* data, size_t n) noexcept;
  size_t write(std::string_view s) noexcept { return write(s.data(), s.size()); }
  bool ok() const { return err_ == 0; }
  // Flushes to disk (fsync), closes and renames onto the final name. Throws Error naming the file and the OS
  // reason ("No space left on device") on any failed write, fsync, close or rename; the temporary is removed.
  void commit();
  const std::filesystem::path& path() const { return path_; }

 private:
  void fail(int err) noexcept;
  std::filesystem::path path_, tmp_;
  int fd_ = -1;
  int err_ = 0;             // errno of the first failure (0 = none)
  const char* what_ = "";   // the operation that failed
  bool committed_ = false;
};

// Writes `content` to `path` through AtomicFile: a crash never leaves a half file, a failure names the file.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// Appends one line (a '\n' is added) to `path` and checks that all of it reached the file: an Error naming
// the file and the OS reason otherwise. For append-only logs such as metrics.jsonl; a failed append leaves at
// most one partial last line, which readers skip.
class CheckedAppender {
 public:
  CheckedAppender() = default;
  explicit CheckedAppender(const std::filesystem::path& path, bool truncate = false);
  CheckedAppender(CheckedAppender&& o) noexcept;
  CheckedAppender& operator=(CheckedAppender&& o) noexcept;
  ~CheckedAppender();
  bool is_open() const { return fd_ >= 0; }
  void append_line(std::string_view line);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// Calls fn(line, line_number) for each non-empty line (1-based numbers); a missing file is an Error.
void for_each_line(const std::filesystem::path& path,
                   const std::function<void(std::string_view, size_t)>& fn);

}  // namespace rlvr
