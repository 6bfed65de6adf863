#include "common/config_io.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

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

namespace {
std::string num(double x) {
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  return fmt::format("{}", x);
}
}  // namespace

bool Range::contains(double x) const {
  if (!std::isfinite(x)) return false;
  if (zero_ok && x == 0) return true;
  if (lo_open ? !(x > lo) : !(x >= lo)) return false;
  if (hi_open ? !(x < hi) : !(x <= hi)) return false;
  return true;
}

std::string Range::describe() const {
  std::string r;
  if (std::isinf(hi)) r = fmt::format("{} {}", lo_open ? ">" : ">=", num(lo));
  else if (std::isinf(lo)) r = fmt::format("{} {}", hi_open ? "<" : "<=", num(hi));
  else r = fmt::format("in {}{}, {}{}", lo_open ? "(" : "[", num(lo), num(hi), hi_open ? ")" : "]");
  return zero_ok ? "0 or " + r : r;
}

Range at_least(double lo, double hi) { return Range{lo, hi, false, false, false}; }
Range above(double lo, double hi) { return Range{lo, hi, true, false, false}; }
Range open_range(double lo, double hi) { return Range{lo, hi, true, true, false}; }
Range half_open(double lo, double hi) { return Range{lo, hi, false, true, false}; }

void check_no_duplicate_keys(const YAML::Node& node, const std::string& path, const std::string& file) {
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i)
      check_no_duplicate_keys(node[i], fmt::format("{}[{}]", path, i), file);
    return;
  }
  if (!node.IsMap()) return;
  std::map<std::string, YAML::Node> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const auto k = it->first.IsScalar() ? it->first.Scalar() : std::string("<non-scalar key>");
    const auto full = path.empty() ? k : path + "." + k;
    auto [pos, fresh] = seen.emplace(k, it->first);
    if (!fresh)
      throw ConfigError(fmt::format("duplicate key '{}' ({}; first at {}): remove one of them", full,
                                    node_location(it->first, file), node_location(pos->second, file)));
    check_no_duplicate_keys(it->second, full, file);
  }
}

YAML::Node load_override_value(const std::string& text, const std::string& what) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}: YAML syntax error in '{}': {}", what, text, e.msg));
  }
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

std::optional<Range> YamlReader::take_range(const char* key) {
  if (!pending_ || pending_key_ != key) return std::nullopt;
  auto r = pending_;
  pending_.reset();
  return r;
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

// An integer field: "1000", or an integral number in any notation ("1e3"); out of the field's range (or of
// its type, which would overflow) is an error naming the range, not "must be an integer".
template <typename T>
void YamlReader::integer(const char* key, T& v) {
  auto range = take_range(key);
  auto found = find(key);
  if (!found) return;
  YAML::Node n = *found;
  Range r = range.value_or(at_least(static_cast<double>(std::numeric_limits<T>::min()),
                                    static_cast<double>(std::numeric_limits<T>::max())));
  r.lo = std::max(r.lo, static_cast<double>(std::numeric_limits<T>::min()));
  r.hi = std::min(r.hi, static_cast<double>(std::numeric_limits<T>::max()));
  auto bad = [&](const std::string& what) {
    if (!n.IsScalar())
      return ConfigError(fmt::format("{}.{} must be {} ({})", section_, key, what, node_location(n, file_)));
    return ConfigError(fmt::format("{}.{} must be {}, got '{}' ({})", section_, key, what, n.Scalar(),
                                   node_location(n, file_)));
  };
  if (!n.IsScalar()) throw bad("an integer");
  long double x;
  try {
    x = static_cast<long double>(n.as<double>());
  } catch (const YAML::Exception&) {
    throw bad("an integer");
  }
  try {  // exact for integers beyond 2^53
    x = static_cast<long double>(n.as<int64_t>());
  } catch (const YAML::Exception&) {
  }
  if (!std::isfinite(static_cast<double>(x)) || std::floor(x) != x) throw bad("an integer");
  if (!r.contains(static_cast<double>(x))) throw bad("an integer " + r.describe());
  v = static_cast<T>(x);
}

void YamlReader::field(const char* key, bool& v, const char*) { scalar(key, v, "true or false"); }
void YamlReader::field(const char* key, int32_t& v, const char*) { integer(key, v); }
void YamlReader::field(const char* key, int64_t& v, const char*) { integer(key, v); }
void YamlReader::field(const char* key, double& v, const char*) {
  auto range = take_range(key);
  auto found = find(key);
  if (!found) return;
  double x = v;
  known_.pop_back();  // scalar() looks the key up again
  scalar(key, x, "a number");
  const YAML::Node& n = *found;
  if (!std::isfinite(x))
    throw ConfigError(fmt::format("{}.{} must be a finite number, got '{}' ({})", section_, key, n.Scalar(),
                                  node_location(n, file_)));
  if (range && !range->contains(x))
    throw ConfigError(fmt::format("{}.{} must be {}, got '{}' ({})", section_, key, range->describe(), n.Scalar(),
                                  node_location(n, file_)));
  v = x;
}

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
  if (n.IsScalar() && n.Mark().line < 0)  // "1,2" override
    n = load_override_value("[" + n.Scalar() + "]", fmt::format("override {}.{}", section_, key));
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
  if (n.IsScalar()) n = load_override_value("[" + n.Scalar() + "]", fmt::format("override {}.{}", section_, key));
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

void YamlWriter::comment(const char* key, const char* doc) {
  std::string text = doc ? doc : "";
  if (pending_ && pending_key_ == key) text += (text.empty() ? "" : "; ") + pending_->describe();
  pending_.reset();
  if (!text.empty()) out_ << YAML::Comment(text);
}

void YamlWriter::field(const char* k, bool& v, const char* d) { out_ << YAML::Key << k << YAML::Value << v; comment(k, d); }
void YamlWriter::field(const char* k, int32_t& v, const char* d) { out_ << YAML::Key << k << YAML::Value << v; comment(k, d); }
void YamlWriter::field(const char* k, int64_t& v, const char* d) { out_ << YAML::Key << k << YAML::Value << v; comment(k, d); }
void YamlWriter::field(const char* k, double& v, const char* d) {
  out_ << YAML::Key << k << YAML::Value << fmt::format("{}", v);  // shortest round-trip form
  comment(k, d);
}
void YamlWriter::field(const char* k, std::string& v, const char* d) {
  out_ << YAML::Key << k << YAML::Value << YAML::DoubleQuoted << v;
  comment(k, d);
}
void YamlWriter::field(const char* k, std::vector<int64_t>& v, const char* d) {
  out_ << YAML::Key << k << YAML::Value << YAML::Flow << v;
  comment(k, d);
}
void YamlWriter::field(const char* k, std::vector<std::string>& v, const char* d) {
  out_ << YAML::Key << k << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (auto& s : v) out_ << YAML::DoubleQuoted << s;
  out_ << YAML::EndSeq;
  comment(k, d);
}
void YamlWriter::field(const char* k, StringMap& v, const char* d) {
  out_ << YAML::Key << k << YAML::Value << YAML::BeginMap;
  for (auto& [a, b] : v) out_ << YAML::Key << a << YAML::Value << b;
  out_ << YAML::EndMap;
  comment(k, d);
}

void RangeChecker::check(const char* key, double v, bool is_double) {
  std::optional<Range> r;
  if (pending_ && pending_key_ == key) r = pending_;
  pending_.reset();
  if (is_double && !std::isfinite(v))
    throw ConfigError(fmt::format("{}.{} must be a finite number, got {}", section_, key, num(v)));
  if (r && !r->contains(v))
    throw ConfigError(fmt::format("{}.{} must be {}, got {}", section_, key, r->describe(), num(v)));
}

}  // namespace rlvr
