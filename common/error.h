// Errors: one exception type that carries an exit code, and RLVR_CHECK for boundary checks with the
// offending values in the message. main() catches, logs and exits with the code.
#pragma once
#include <fmt/format.h>
#include <stdexcept>
#include <string>

namespace rlvr {

// Exit codes: 2 for usage and config errors (the user can fix the command or file), 1 for runtime failures.
enum class ExitCode : int { ok = 0, runtime = 1, usage = 2, interrupted = 130 };

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg, ExitCode code = ExitCode::runtime)
      : std::runtime_error(msg), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

// A config or usage error: exit code 2.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& msg) : Error(msg, ExitCode::usage) {}
};

}  // namespace rlvr

#define RLVR_CHECK(cond, ...)                                   \
  do {                                                          \
    if (!(cond)) throw ::rlvr::Error(::fmt::format(__VA_ARGS__)); \
  } while (0)

#define RLVR_CONFIG_CHECK(cond, ...)                                  \
  do {                                                                \
    if (!(cond)) throw ::rlvr::ConfigError(::fmt::format(__VA_ARGS__)); \
  } while (0)
