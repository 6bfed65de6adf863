#include "common/config_io.h"

#include <algorithm>
#include <limits>

#include "common/error.h"

namespace rlvr {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1] ? 1u : 0u)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_key(const std::string& key, const std::vector<std::string>& known) {
  std::string best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (const auto& k : known) {
    size_t d = edit_distance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  // Suggest only when at most about a third of the key differs.
  if (best.empty() || best_d > std::max<size_t>(2, key.size() / 3)) return "";
  return best;
}

std::string node_location(const YAML::Node& node, const std::string& file) {
  auto m = node.Mark();
  if (m.line < 0) return "command-line override";
  if (file.empty()) return fmt::format("line {}", m.line + 1);
  return fmt::format("{}:{}", file, m.line + 1);
}

YamlReader::YamlReader(const YAML::Node& map, std::string section, std::string file)
    : map_(map), section_(std::move(section)), file_(std::move(file)) {
  if (map_ && !map_.IsNull() && !map_.IsMap())
    throw ConfigError(fmt::format("'{}' must be a mapping of keys to values ({})", section_,
                                  node_location(map_, file_)));
}

std::optional<YAML::Node> YamlReader::find(const char* key) {
  known_.emplace_back(key);
  if (!map_ || !map_.IsMap()) return std::nullopt;
  for (auto it = map_.begin(); it != map_.end(); ++it)
    if (it->first.as<std::string>() == key) return it->second;
  return std::nullopt;
}

template <typename T>
void YamlReader::scalar(const char* key, T& v, const char* type_name) {
  auto found = find(key);
  if (!found) return;
  YAML::Node n = *found;
  if (!n.IsScalar())
    throw ConfigError(fmt::format("{}.{} must be {} ({})", section_, key, type_name, node_location(n, file_)));
  try {
    v = n.as<T>();
  } catch (const YAML::Exception&) {
    throw ConfigError(fmt::format("{}.{} must be {}, got '{}' ({})", section_, key, type_name,
                                  n.Scalar(), node_location(n, file_)));
  }
}

void YamlReader::field(const char* key, bool& v, const char*) { scalar(key, v, "true or false"); }
void YamlReader::field(const char* key, int32_t& v, const char*) { scalar(key, v, "an integer"); }
void YamlReader::field(const char* key, int64_t& v, const char*) { scalar(key, v, "an integer"); }
void YamlReader::field(const char* key, double& v, const char*) { scalar(key, v, "a number"); }

void YamlReader::field(const char* key, std::string& v, const char*) {
  auto found = find(key);
  if (!found) return;
  YAML::Node n = *found;
  if (n.IsNull()) { v.clear(); return; }
  if (!n.IsScalar())
    throw ConfigError(fmt::format("{}.{} must be a string ({})", section_, key, node_location(n, file_)));
  v = n.Scalar();
}

void YamlReader::field(const char* key, std::vector<int64_t>& v, const char*) {
  auto found = find(key);
  if (!found) return;
  YAML::Node n = *found;
  v.clear();
  if (n.IsNull()) return;
  if (n.IsScalar() && n.Mark().line < 0) n = YAML::Load("[" + n.Scalar() + "]");  // "1,2" override
  if (!n.IsSequence())
    throw ConfigError(fmt::format("{}.{} must be a list of integers ({})", section_, key, node_location(n, file_)));
  for (const auto& e : n) {
    try {
      v.push_back(e.as<int64_t>());
    } catch (const YAML::Exception&) {
      throw ConfigError(fmt::format("{}.{} must be a list of integers, got '{}' ({})", section_, key,
                                    e.IsScalar() ? e.Scalar() : "<non-scalar>", node_location(e, file_)));
    }
  }
}

void YamlReader::field(const char* key, std::vector<std::string>& v, const char*) {
  auto found = find(key);
  if (!found) return;
  YAML::Node n = *found;
  v.clear();
  if (n.IsNull()) return;
  if (n.IsScalar() && n.Mark().line >= 0)
    throw ConfigError(fmt::format("{}.{} must be a list of strings ({})", section_, key, node_location(n, file_)));
  if (n.IsScalar()) n = YAML::Load("[" + n.Scalar() + "]");
  if (!n.IsSequence())
    throw ConfigError(fmt::format("{}.{} must be a list of strings ({})", section_, key, node_location(n, file_)));
  for (const auto& e : n) {
    if (!e.IsScalar())
      throw ConfigError(fmt::format("{}.{} must be a list of strings ({})", section_, key, node_location(e, file_)));
    v.push_back(e.Scalar());
  }
}

void YamlReader::field(const char* key, StringMap& v, const char*) {
  auto found = find(key);
  if (!found) return;
  YAML::Node n = *found;
  v.clear();
  if (n.IsNull()) return;
  if (!n.IsMap())
    throw ConfigError(fmt::format("{}.{} must be a mapping ({})", section_, key, node_location(n, file_)));
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!it->second.IsScalar())
      throw ConfigError(fmt::format("{}.{}.{} must be a scalar ({})", section_, key,
                                    it->first.as<std::string>(), node_location(it->second, file_)));
    v[it->first.as<std::string>()] = it->second.Scalar();
  }
}

void YamlReader::finish() const {
  if (!map_ || !map_.IsMap()) return;
  for (auto it = map_.begin(); it != map_.end(); ++it) {
    auto k = it->first.as<std::string>();
    if (std::find(known_.begin(), known_.end(), k) != known_.end()) continue;
    auto guess = closest_key(k, known_);
    throw ConfigError(fmt::format("unknown key '{}.{}' ({}){}", section_, k, node_location(it->first, file_),
                                  guess.empty() ? fmt::format("; known: [{}]", fmt::join(known_, ", "))
                                                : fmt::format("; did you mean '{}.{}'?", section_, guess)));
  }
}

namespace {
void comment(YAML::Emitter& out, const char* doc) {
  if (doc && *doc) out << YAML::Comment(doc);
}
}  // namespace

void YamlWriter::field(const char* k, bool& v, const char* d) { out_ << YAML::Key << k << YAML::Value << v; comment(out_, d); }
void YamlWriter::field(const char* k, int32_t& v, const char* d) { out_ << YAML::Key << k << YAML::Value << v; comment(out_, d); }
void YamlWriter::field(const char* k, int64_t& v, const char* d) { out_ << YAML::Key << k << YAML::Value << v; comment(out_, d); }
void YamlWriter::field(const char* k, double& v, const char* d) {
  out_ << YAML::Key << k << YAML::Value << fmt::format("{}", v);  // shortest round-trip form
  comment(out_, d);
}
void YamlWriter::field(const char* k, std::string& v, const char* d) {
  out_ << YAML::Key << k << YAML::Value << YAML::DoubleQuoted << v;
  comment(out_, d);
}
void YamlWriter::field(const char* k, std::vector<int64_t>& v, const char* d) {
  out_ << YAML::Key << k << YAML::Value << YAML::Flow << v;
  comment(out_, d);
}
void YamlWriter::field(const char* k, std::vector<std::string>& v, const char* d) {
  out_ << YAML::Key << k << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (auto& s : v) out_ << YAML::DoubleQuoted << s;
  out_ << YAML::EndSeq;
  comment(out_, d);
}
void YamlWriter::field(const char* k, StringMap& v, const char* d) {
  out_ << YAML::Key << k << YAML::Value << YAML::BeginMap;
  for (auto& [a, b] : v) out_ << YAML::Key << a << YAML::Value << b;
  out_ << YAML::EndMap;
  comment(out_, d);
}

}  // namespace rlvr
