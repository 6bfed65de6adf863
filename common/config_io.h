// Typed YAML config machinery. A config section is a plain struct with defaults plus a
// `visit(Visitor&)` member that names each field once; the same list drives reading YAML (with type
// checks, file:line and did-you-mean for unknown keys), `key=value` overrides, and writing YAML back.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
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

class ConfigVisitor {
 public:
  virtual ~ConfigVisitor() = default;
  virtual void field(const char* key, bool& v, const char* doc) = 0;
  virtual void field(const char* key, int32_t& v, const char* doc) = 0;
  virtual void field(const char* key, int64_t& v, const char* doc) = 0;
  virtual void field(const char* key, double& v, const char* doc) = 0;
  virtual void field(const char* key, std::string& v, const char* doc) = 0;
  virtual void field(const char* key, std::vector<int64_t>& v, const char* doc) = 0;
  virtual void field(const char* key, std::vector<std::string>& v, const char* doc) = 0;
  virtual void field(const char* key, StringMap& v, const char* doc) = 0;
};

// Reads one YAML mapping into a section struct. Unknown keys and wrong types throw ConfigError
// naming "<section>.<key>", the file:line and the closest known key.
class YamlReader : public ConfigVisitor {
 public:
  YamlReader(const YAML::Node& map, std::string section, std::string file);
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
  YAML::Node map_;
  std::string section_, file_;
  std::vector<std::string> known_;
};

// Writes a section as a YAML map (with each field's doc as a comment).
class YamlWriter : public ConfigVisitor {
 public:
  explicit YamlWriter(YAML::Emitter& out) : out_(out) {}
  void field(const char* key, bool& v, const char* doc) override;
  void field(const char* key, int32_t& v, const char* doc) override;
  void field(const char* key, int64_t& v, const char* doc) override;
  void field(const char* key, double& v, const char* doc) override;
  void field(const char* key, std::string& v, const char* doc) override;
  void field(const char* key, std::vector<int64_t>& v, const char* doc) override;
  void field(const char* key, std::vector<std::string>& v, const char* doc) override;
  void field(const char* key, StringMap& v, const char* doc) override;

 private:
  YAML::Emitter& out_;
};

// Collects the field names of a section (for did-you-mean on overrides and section listings).
class KeyLister : public ConfigVisitor {
 public:
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
