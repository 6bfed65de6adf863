// Typed YAML config machinery. A config section is a plain struct with defaults plus a
// `visit(Visitor&)` member that names each field once; the same list drives reading YAML (with type
// checks, file:line and did-you-mean for unknown keys), `key=value` overrides, and writing YAML back.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rlvr {

// Levenshtein distance; used for "did you mean".
size_t edit_distance(const std::string& a, const std::string& b);
// The closest of `known` to `key`, or "" when nothing is close enough to suggest.
std::string closest_key(const std::string& key, const std::vector<std::string>& known);

// Where a YAML node came from: "configs/x.yaml:12" (1-based line), or "override" / "default".
std::string node_location(const YAML::Node& node, const std::string& file);

// Field kinds every section may use.
using StringMap = std::map<std::string, std::string>;

// The numeric range of a config field, given as the optional 4th argument of field(): checked when YAML is
// read (with file:line), by validate() for configs built in code (RangeChecker), and shown by `rlvr config`.
// Every double must be finite whether or not it has a range; an integer must fit its type.
struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;  // exclusive bounds
  bool zero_ok = false;                   // 0 (conventionally "off") is allowed outside [lo, hi]
  bool contains(double x) const;
  std::string describe() const;  // "in [0, 1)", ">= 1", "0 or in (1, 100]"
  Range& or_zero() { zero_ok = true; return *this; }
};
// [lo, hi] (hi defaults to unbounded), (lo, hi], (lo, hi).
Range at_least(double lo, double hi = std::numeric_limits<double>::infinity());
Range above(double lo, double hi = std::numeric_limits<double>::infinity());
Range open_range(double lo, double hi);
// [lo, hi).
Range half_open(double lo, double hi);

class ConfigVisitor {
 public:
  virtual ~ConfigVisitor() = default;
  // A field with its range (see Range); visitors that do not care ignore the range.
  void field(const char* key, int32_t& v, const char* doc, const Range& r) { on_range(key, r); field(key, v, doc); }
  void field(const char* key, int64_t& v, const char* doc, const Range& r) { on_range(key, r); field(key, v, doc); }
  void field(const char* key, double& v, const char* doc, const Range& r) { on_range(key, r); field(key, v, doc); }
  virtual void field(const char* key, bool& v, const char* doc) = 0;
  virtual void field(const char* key, int32_t& v, const char* doc) = 0;
  virtual void field(const char* key, int64_t& v, const char* doc) = 0;
  virtual void field(const char* key, double& v, const char* doc) = 0;
  virtual void field(const char* key, std::string& v, const char* doc) = 0;
  virtual void field(const char* key, std::vector<int64_t>& v, const char* doc) = 0;
  virtual void field(const char* key, std::vector<std::string>& v, const char* doc) = 0;
  virtual void field(const char* key, StringMap& v, const char* doc) = 0;

 protected:
  // Called just before the 3-argument field() of the same key when the field has a range.
  virtual void on_range(const char* key, const Range& r) { (void)key, (void)r; }
};

// Throws ConfigError at the first mapping in `node` (recursively) that has the same key twice: yaml-cpp would
// silently keep the first. `path` prefixes the key in the message ("" at the root).
void check_no_duplicate_keys(const YAML::Node& node, const std::string& path, const std::string& file);

// Parses a command-line override's value ("[1, 2]") as YAML; a syntax error is a ConfigError naming the
// override.
YAML::Node load_override_value(const std::string& text, const std::string& what);

// Reads one YAML mapping into a section struct. Unknown keys and wrong types throw ConfigError
// naming "<section>.<key>", the file:line and the closest known key.
class YamlReader : public ConfigVisitor {
 public:
  YamlReader(const YAML::Node& map, std::string section, std::string file);
  using ConfigVisitor::field;
  void field(const char* key, bool& v, const char* doc) override;
  void field(const char* key, int32_t& v, const char* doc) override;
  void field(const char* key, int64_t& v, const char* doc) override;
  void field(const char* key, double& v, const char* doc) override;
  void field(const char* key, std::string& v, const char* doc) override;
  void field(const char* key, std::vector<int64_t>& v, const char* doc) override;
  void field(const char* key, std::vector<std::string>& v, const char* doc) override;
  void field(const char* key, StringMap& v, const char* doc) override;
  // After visiting: throws on any key of the mapping that no field claimed.
  void finish() const;

 private:
  // The value under `key`, or nullopt when the mapping has no such key.
  std::optional<YAML::Node> find(const char* key);
  template <typename T> void scalar(const char* key, T& v, const char* type_name);
  template <typename T> void integer(const char* key, T& v);
  void on_range(const char* key, const Range& r) override { pending_ = r, pending_key_ = key; }
  // The range announced for `key`, if any (consumed).
  std::optional<Range> take_range(const char* key);
  std::optional<Range> pending_;
  std::string pending_key_;
  YAML::Node map_;
  std::string section_, file_;
  std::vector<std::string> known_;
};

// Writes a section as a YAML map (with each field's doc as a comment).
class YamlWriter : public ConfigVisitor {
 public:
  explicit YamlWriter(YAML::Emitter& out) : out_(out) {}
  using ConfigVisitor::field;
  void field(const char* key, bool& v, const char* doc) override;
  void field(const char* key, int32_t& v, const char* doc) override;
  void field(const char* key, int64_t& v, const char* doc) override;
  void field(const char* key, double& v, const char* doc) override;
  void field(const char* key, std::string& v, const char* doc) override;
  void field(const char* key, std::vector<int64_t>& v, const char* doc) override;
  void field(const char* key, std::vector<std::string>& v, const char* doc) override;
  void field(const char* key, StringMap& v, const char* doc) override;

 private:
  void on_range(const char* key, const Range& r) override { pending_ = r, pending_key_ = key; }
  void comment(const char* key, const char* doc);
  std::optional<Range> pending_;
  std::string pending_key_;
  YAML::Emitter& out_;
};

// Checks the values of a section struct against the ranges its visit() declares (and that every double is
// finite); throws ConfigError "<section>.<key> must be ..., got <value>". validate() runs it on every section.
class RangeChecker : public ConfigVisitor {
 public:
  explicit RangeChecker(std::string section) : section_(std::move(section)) {}
  using ConfigVisitor::field;
  void field(const char*, bool&, const char*) override {}
  void field(const char* k, int32_t& v, const char*) override { check(k, static_cast<double>(v), false); }
  void field(const char* k, int64_t& v, const char*) override { check(k, static_cast<double>(v), false); }
  void field(const char* k, double& v, const char*) override { check(k, v, true); }
  void field(const char*, std::string&, const char*) override {}
  void field(const char*, std::vector<int64_t>&, const char*) override {}
  void field(const char*, std::vector<std::string>&, const char*) override {}
  void field(const char*, StringMap&, const char*) override {}

 private:
  void on_range(const char* key, const Range& r) override { pending_ = r, pending_key_ = key; }
  void check(const char* key, double v, bool is_double);
  std::optional<Range> pending_;
  std::string pending_key_, section_;
};

// Collects the field names of a section (for did-you-mean on overrides and section listings).
class KeyLister : public ConfigVisitor {
 public:
  using ConfigVisitor::field;
  std::vector<std::string> keys;
  void field(const char* k, bool&, const char*) override { keys.push_back(k); }
  void field(const char* k, int32_t&, const char*) override { keys.push_back(k); }
  void field(const char* k, int64_t&, const char*) override { keys.push_back(k); }
  void field(const char* k, double&, const char*) override { keys.push_back(k); }
  void field(const char* k, std::string&, const char*) override { keys.push_back(k); }
  void field(const char* k, std::vector<int64_t>&, const char*) override { keys.push_back(k); }
  void field(const char* k, std::vector<std::string>&, const char*) override { keys.push_back(k); }
  void field(const char* k, StringMap&, const char*) override { keys.push_back(k); }
};

}  // namespace rlvr
