// Logging front end. spdlog (built against Debian's fmt) is confined to log.cpp so that translation
// units that include LibTorch headers never see two fmt copies; callers format with fmt themselves.
#pragma once
#include <fmt/format.h>

#include <filesystem>
#include <string>

namespace rlvr::log {

enum class Level { debug, info, warn, error };

void set_level(Level level);
Level parse_level(const std::string& name);  // "debug" | "info" | "warn" | "error"
// Also write every message to `path` (the run directory's log file). Idempotent per path.
void add_file_sink(const std::filesystem::path& path);
// Ranks other than 0 log warnings and errors only, prefixed with their rank.
void set_rank(int rank);
// Every message is clipped to kMaxMessageBytes (a whole 20 MB input line quoted in an error must not flood
// the terminal and the run's log): the head is kept and the clipped byte count appended.
inline constexpr size_t kMaxMessageBytes = 2000;
void write(Level level, const std::string& msg);
// `s` when it fits in `max` bytes; else its first `max` bytes (not splitting a UTF-8 character) and
// " ... [N more bytes]".
std::string clip(const std::string& s, size_t max = kMaxMessageBytes);

template <typename... A>
void info(fmt::format_string<A...> f, A&&... a) { write(Level::info, fmt::format(f, std::forward<A>(a)...)); }
template <typename... A>
void warn(fmt::format_string<A...> f, A&&... a) { write(Level::warn, fmt::format(f, std::forward<A>(a)...)); }
template <typename... A>
void error(fmt::format_string<A...> f, A&&... a) { write(Level::error, fmt::format(f, std::forward<A>(a)...)); }
template <typename... A>
void debug(fmt::format_string<A...> f, A&&... a) { write(Level::debug, fmt::format(f, std::forward<A>(a)...)); }

}  // namespace rlvr::log
