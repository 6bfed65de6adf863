#include "common/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <set>

#include "common/error.h"
#include "common/progress.h"

namespace rlvr::log {
namespace {

std::mutex g_mu;
std::set<std::string> g_files;
int g_rank = 0;

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto lg = std::make_shared<spdlog::logger>("rlvr", sink);
    lg->set_pattern("[%H:%M:%S] [%^%l%$] %v");
    lg->set_level(spdlog::level::info);
    lg->flush_on(spdlog::level::info);
    return lg;
  }();
  return *l;
}

spdlog::level::level_enum to_spd(Level l) {
  switch (l) {
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

void set_level(Level level) { logger().set_level(to_spd(level)); }

Level parse_level(const std::string& name) {
  if (name == "debug") return Level::debug;
  if (name == "info") return Level::info;
  if (name == "warn" || name == "warning") return Level::warn;
  if (name == "error") return Level::error;
  throw ConfigError(fmt::format("unknown log level '{}'; known: [debug, info, warn, error]", name));
}

void add_file_sink(const std::filesystem::path& path) {
  std::lock_guard<std::mutex> lk(g_mu);
  if (!g_files.insert(path.string()).second) return;
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path.string(), /*truncate=*/false);
  sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  sink->set_level(spdlog::level::debug);
  logger().sinks().push_back(sink);
}

void set_rank(int rank) {
  g_rank = rank;
  if (rank != 0) {
    logger().set_level(spdlog::level::warn);
    logger().set_pattern(fmt::format("[%H:%M:%S] [rank {}] [%^%l%$] %v", rank));
  }
}

std::string clip(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // a UTF-8 continuation byte
  return fmt::format("{} ... [{} more bytes]", s.substr(0, cut), s.size() - cut);
}

void write(Level level, const std::string& msg) {
  // A progress line on the terminal is cleared before the message and redrawn after it.
  struct LineGuard {
    LineGuard() { progress_before_log(); }
    ~LineGuard() { progress_after_log(); }
  } guard;
  logger().log(to_spd(level), "{}", clip(msg));
}

}  // namespace rlvr::log
