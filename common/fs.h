// Small file helpers: read a whole file, write atomically (temporary name, then rename), JSONL lines.
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace rlvr {

std::string read_file(const std::filesystem::path& path);

// Writes `content` to `path` through `path.tmp.<pid>` and a rename, so a crash never leaves a half file.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// Calls fn(line, line_number) for each non-empty line (1-based numbers); a missing file is an Error.
void for_each_line(const std::filesystem::path& path,
                   const std::function<void(std::string_view, size_t)>& fn);

}  // namespace rlvr
