// Reward registry, built-in reward functions and the Rubric (see rubric.h).
#include "rewards/rubric.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "data/countdown.h"

namespace rlvr::rewards {

namespace {

bool is_countdown(const nlohmann::json* extra) {
  return extra && extra->is_object() && extra->value("task", "") == "countdown" && extra->contains("numbers") &&
         extra->contains("target");
}

// A countdown record: the extracted answer must be an expression over the record's numbers equal to its target
// (the same checker as evaluation); `\boxed{<target>}` alone is not an expression over the numbers.
VerifyResult verify_countdown(std::string_view completion, const nlohmann::json& extra, const VerifyOptions& opt) {
  VerifyResult r;
  r.gold_extracted = extra["target"].dump();
  try {
    auto answer = extract_answer(completion, opt);
    if (!answer) {
      r.reason = "countdown: nothing extracted";
      return r;
    }
    r.pred_extracted = answer->substr(0, 200);
    const auto& nums = extra["numbers"];
    const auto& target = extra["target"];
    if (!nums.is_array() || !target.is_number_integer()) {
      r.reason = "countdown: the record's numbers or target are malformed";
      return r;
    }
    auto v = data::check_countdown(*answer, nums.get<std::vector<int64_t>>(), target.get<int64_t>());
    r.verdict = v.correct() ? Verdict::correct : Verdict::wrong;
    r.reason = std::string("countdown: ") + data::to_string(v.status);
  } catch (...) {
    r.verdict = Verdict::ungradable;
    r.reason = "countdown: malformed record";
  }
  return r;
}

}  // namespace

VerifyResult verify_completion(std::string_view completion, std::string_view reference, const nlohmann::json* extra,
                               const VerifyOptions& opt) {
  return is_countdown(extra) ? verify_countdown(completion, *extra, opt) : verify(completion, reference, opt);
}

const VerifyResult& VerifyCache::get(const VerifyOptions& opt) {
  for (auto& [o, r] : done_)
    if (o == opt) return r;
  if (done_.size() == done_.capacity()) {  // never reallocate: callers may hold earlier references
    extra_ = verify_completion(in_.completion, in_.reference, in_.extra, opt);
    return extra_;
  }
  done_.emplace_back(opt, verify_completion(in_.completion, in_.reference, in_.extra, opt));
  return done_.back().second;
}

// ---------------------------------------------------------------------------------------------------
double ArgReader::num(const std::string& key, double def) {
  used.push_back(key);
  auto it = args.find(key);
  if (it == args.end()) return def;
  try {
    size_t n = 0;
    double v = std::stod(it->second, &n);
    if (n != it->second.size() || !std::isfinite(v)) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    throw ConfigError(fmt::format("reward '{}': args.{} must be a number, got '{}'", fn, key, it->second));
  }
}
int64_t ArgReader::integer(const std::string& key, int64_t def) {
  used.push_back(key);
  auto it = args.find(key);
  if (it == args.end()) return def;
  try {
    size_t n = 0;
    long long v = std::stoll(it->second, &n);
    if (n != it->second.size()) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    throw ConfigError(fmt::format("reward '{}': args.{} must be an integer, got '{}'", fn, key, it->second));
  }
}
std::string ArgReader::str(const std::string& key, const std::string& def, const std::vector<std::string>& allowed) {
  used.push_back(key);
  auto it = args.find(key);
  if (it == args.end()) return def;
  if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), it->second) == allowed.end())
    throw ConfigError(fmt::format("reward '{}': args.{} must be one of {}, got '{}'", fn, key,
                                  fmt::join(allowed, "|"), it->second));
  return it->second;
}
bool ArgReader::boolean(const std::string& key, bool def) {
  used.push_back(key);
  auto it = args.find(key);
  if (it == args.end()) return def;
  std::string v = it->second;
  for (auto& c : v) c = char(std::tolower((unsigned char)c));
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  throw ConfigError(fmt::format("reward '{}': args.{} must be true or false, got '{}'", fn, key, it->second));
}
void ArgReader::finish() const {
  for (auto& [k, v] : args)
    if (std::find(used.begin(), used.end(), k) == used.end())
      throw ConfigError(fmt::format("reward '{}': unknown argument '{}' (known: {})", fn, k, fmt::join(used, ", ")));
}

VerifyOptions verify_options_from_args(ArgReader& a) {
  VerifyOptions o;
  o.float_rounding = int(a.integer("float_rounding", o.float_rounding));
  RLVR_CONFIG_CHECK(o.float_rounding >= 0 && o.float_rounding <= 15,
                    "reward '{}': args.float_rounding must be in [0, 15], got {}", a.fn, o.float_rounding);
  std::string ex = a.str("extraction", "lenient", {"lenient", "strict"});
  o.strict_extraction = ex == "strict";
  if (o.strict_extraction) o.expr = false;  // anchors only: \boxed, <answer>, "answer is", $..$
  o.boxed_first = a.boolean("boxed_first", true);
  o.strict = a.boolean("strict_symbols", true);
  o.percent_flexible = a.boolean("percent_flexible", true);
  o.max_completion_chars = size_t(a.integer("max_completion_chars", int64_t(o.max_completion_chars)));
  return o;
}

double random_unit(uint64_t seed, std::string_view reference, std::string_view completion) {
  // FNV-1a over seed, reference and text (with a separator), then the SplitMix64 finaliser for the low bits.
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](unsigned char c) { h = (h ^ c) * 0x100000001b3ULL; };
  for (int i = 0; i < 8; ++i) mix(static_cast<unsigned char>(seed >> (8 * i)));
  for (char c : reference) mix(static_cast<unsigned char>(c));
  mix(0xff);
  for (char c : completion) mix(static_cast<unsigned char>(c));
  h ^= h >> 30, h *= 0xbf58476d1ce4e5b9ULL, h ^= h >> 27, h *= 0x94d049bb133111ebULL, h ^= h >> 31;
  return double(h >> 11) * 0x1.0p-53;
}

// ---------------------------------------------------------------------------------------------------
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, std::pair<RewardInfo, RewardFactory>> fns;
};
Registry& registry();

class MathAccuracy : public RewardFunction {
 public:
  MathAccuracy(VerifyOptions o, double correct, double wrong, double ungradable)
      : opt_(o), correct_(correct), wrong_(wrong), ungradable_(ungradable) {}
  double score(const CompletionInput& in, VerifyCache& vc) const override {
    switch (vc.get(opt_).verdict) {
      case Verdict::correct: return correct_;
      case Verdict::wrong: return wrong_;
      case Verdict::ungradable: return ungradable_;
    }
    return ungradable_;
  }
  bool has_verdict() const override { return true; }
  Verdict verdict(const CompletionInput& in, VerifyCache& vc) const override { return vc.get(opt_).verdict; }

 private:
  VerifyOptions opt_;
  double correct_, wrong_, ungradable_;
};

// R1 format: <think>...</think> then <answer>...</answer> and nothing else; or a \boxed{} answer present.
class Format : public RewardFunction {
 public:
  explicit Format(std::string style) : style_(std::move(style)) {}
  double score(const CompletionInput& in, VerifyCache&) const override {
    std::string_view c = in.completion;
    if (style_ == "boxed") {
      size_t b = c.rfind("\\boxed{");
      if (b == std::string_view::npos) b = c.rfind("\\fbox{");
      if (b == std::string_view::npos) return 0.0;
      size_t close = c.find('}', b);
      return close != std::string_view::npos ? 1.0 : 0.0;
    }
    auto trim = [](std::string_view s) {
      while (!s.empty() && std::isspace((unsigned char)s.front())) s.remove_prefix(1);
      while (!s.empty() && std::isspace((unsigned char)s.back())) s.remove_suffix(1);
      return s;
    };
    std::string_view s = trim(c);
    if (!s.starts_with("<think>")) return 0.0;
    size_t te = s.find("</think>");
    if (te == std::string_view::npos) return 0.0;
    if (s.find("<think>", 7) != std::string_view::npos && s.find("<think>", 7) < te) return 0.0;
    std::string_view rest = trim(s.substr(te + 8));
    if (!rest.starts_with("<answer>") || !rest.ends_with("</answer>")) return 0.0;
    std::string_view inner = rest.substr(8, rest.size() - 8 - 9);
    if (inner.find("<answer>") != std::string_view::npos || inner.find("</answer>") != std::string_view::npos)
      return 0.0;
    if (rest.find("<think>") != std::string_view::npos || rest.find("</think>") != std::string_view::npos) return 0.0;
    return 1.0;
  }

 private:
  std::string style_;
};

size_t count_of(std::string_view s, std::string_view needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string_view::npos; p = s.find(needle, p + needle.size())) ++n;
  return n;
}

// 0.25 for each of <think>, </think>, <answer>, </answer> present exactly once.
class TagCount : public RewardFunction {
 public:
  double score(const CompletionInput& in, VerifyCache&) const override {
    double r = 0;
    for (const char* t : {"<think>", "</think>", "<answer>", "</answer>"})
      if (count_of(in.completion, t) == 1) r += 0.25;
    return r;
  }
};

// DAPO soft overlong punishment: 0 up to max - cache tokens, then linearly down to -1 at max, -1 beyond.
class SoftOverlong : public RewardFunction {
 public:
  SoftOverlong(int64_t max_len, int64_t cache) : max_len_(max_len), cache_(cache) {}
  double score(const CompletionInput& in, VerifyCache&) const override {
    int64_t max_len = max_len_ > 0 ? max_len_ : in.max_tokens;
    if (max_len <= 0) return 0.0;
    int64_t cache = std::min(cache_, max_len);
    int64_t expected = max_len - cache;
    if (in.num_tokens <= expected) return 0.0;
    if (in.num_tokens <= max_len && cache > 0) return double(expected - in.num_tokens) / double(cache);
    return -1.0;
  }

 private:
  int64_t max_len_, cache_;
};

// Cosine-scaled length reward (Yeo et al. 2025): short correct answers get max_value_correct, long ones
// min_value_correct; short wrong answers get min_value_wrong (most negative), long wrong ones
// max_value_wrong.
class Cosine : public RewardFunction {
 public:
  Cosine(VerifyOptions o, double minw, double maxw, double minc, double maxc, int64_t max_len)
      : opt_(o), minw_(minw), maxw_(maxw), minc_(minc), maxc_(maxc), max_len_(max_len) {}
  double score(const CompletionInput& in, VerifyCache& vc) const override {
    int64_t max_len = max_len_ > 0 ? max_len_ : in.max_tokens;
    if (max_len <= 0) max_len = std::max<int64_t>(1, in.num_tokens);
    double progress = std::clamp(double(in.num_tokens) / double(max_len), 0.0, 1.0);
    double cosv = std::cos(progress * M_PI);
    bool correct = vc.get(opt_).verdict == Verdict::correct;
    double lo = correct ? minc_ : maxw_;
    double hi = correct ? maxc_ : minw_;
    return lo + 0.5 * (hi - lo) * (1.0 + cosv);
  }

 private:
  VerifyOptions opt_;
  double minw_, maxw_, minc_, maxc_;
  int64_t max_len_;
};

// N-gram repetition penalty (open-r1): max_penalty * (1 - unique n-grams / n-grams) over lowercase words.
class Repetition : public RewardFunction {
 public:
  Repetition(int64_t n, double max_penalty) : n_(n), max_penalty_(max_penalty) {}
  double score(const CompletionInput& in, VerifyCache&) const override {
    std::vector<std::string> words;
    std::string cur;
    for (char c : in.completion) {
      if (std::isspace((unsigned char)c)) {
        if (!cur.empty()) words.push_back(std::move(cur)), cur.clear();
      } else cur += char(std::tolower((unsigned char)c));
    }
    if (!cur.empty()) words.push_back(cur);
    if (int64_t(words.size()) < n_) return 0.0;
    std::set<std::string> uniq;
    size_t total = 0;
    for (size_t i = 0; i + size_t(n_) <= words.size(); ++i) {
      std::string g;
      for (int64_t k = 0; k < n_; ++k) (g += words[i + k]) += '\x1f';
      uniq.insert(std::move(g));
      ++total;
    }
    if (total == 0) return 0.0;
    return (1.0 - double(uniq.size()) / double(total)) * max_penalty_;
  }

 private:
  int64_t n_;
  double max_penalty_;
};

// A control for reward ablations (Shao et al. 2025, "Spurious Rewards"): 1 with probability `rate`, else 0,
// independent of correctness. The draw is a hash of (seed, reference, completion text), so it is
// reproducible across resumes and ranks, and two identical completions of a group get the same value.
class RandomReward : public RewardFunction {
 public:
  RandomReward(double rate, uint64_t seed) : rate_(rate), seed_(seed) {}
  double score(const CompletionInput& in, VerifyCache&) const override {
    return random_unit(seed_, in.reference, in.completion) < rate_ ? 1.0 : 0.0;
  }

 private:
  double rate_;
  uint64_t seed_;
};

void register_builtins(Registry& r) {
  auto add = [&](RewardInfo info, RewardFactory f) {
    std::string name = info.name;
    r.fns[name] = {std::move(info), std::move(f)};
  };
  add({"math_accuracy", "verifier verdict of the completion against the reference answer",
       "mode=binary (binary: 1/0, signed: +1/-1), ungradable=0 (value when ungradable), float_rounding=6, "
       "extraction=lenient (lenient|strict), boxed_first=true, strict_symbols=true, percent_flexible=true, "
       "max_completion_chars=1048576"},
      [](const StringMap& args) -> std::unique_ptr<RewardFunction> {
        ArgReader a{"math_accuracy", args, {}};
        std::string mode = a.str("mode", "binary", {"binary", "signed"});
        double ung = a.num("ungradable", 0.0);
        VerifyOptions o = verify_options_from_args(a);
        a.finish();
        return std::make_unique<MathAccuracy>(o, 1.0, mode == "signed" ? -1.0 : 0.0, ung);
      });
  add({"format", "1 when the completion has the required format, else 0",
       "style=r1 (r1: <think>..</think><answer>..</answer>; boxed: a \\boxed{} answer present)"},
      [](const StringMap& args) -> std::unique_ptr<RewardFunction> {
        ArgReader a{"format", args, {}};
        std::string style = a.str("style", "r1", {"r1", "boxed"});
        a.finish();
        return std::make_unique<Format>(style);
      });
  add({"tag_count", "0.25 for each of <think>, </think>, <answer>, </answer> appearing exactly once", ""},
      [](const StringMap& args) -> std::unique_ptr<RewardFunction> {
        ArgReader a{"tag_count", args, {}};
        a.finish();
        return std::make_unique<TagCount>();
      });
  add({"soft_overlong", "DAPO soft overlong punishment: 0, then linear to -1 over the last `cache` tokens",
       "max_tokens=0 (0: the generation budget), cache=512"},
      [](const StringMap& args) -> std::unique_ptr<RewardFunction> {
        ArgReader a{"soft_overlong", args, {}};
        int64_t max_len = a.integer("max_tokens", 0);
        int64_t cache = a.integer("cache", 512);
        RLVR_CONFIG_CHECK(cache >= 0, "reward 'soft_overlong': args.cache must be >= 0, got {}", cache);
        RLVR_CONFIG_CHECK(max_len >= 0, "reward 'soft_overlong': args.max_tokens must be >= 0, got {}", max_len);
        a.finish();
        return std::make_unique<SoftOverlong>(max_len, cache);
      });
  add({"cosine", "cosine-scaled length reward by correctness (short correct best, short wrong worst)",
       "min_value_wrong=-1, max_value_wrong=-0.5, min_value_correct=0.5, max_value_correct=1, max_tokens=0 "
       "(0: the generation budget), plus math_accuracy's verifier args"},
      [](const StringMap& args) -> std::unique_ptr<RewardFunction> {
        ArgReader a{"cosine", args, {}};
        double minw = a.num("min_value_wrong", -1.0), maxw = a.num("max_value_wrong", -0.5);
        double minc = a.num("min_value_correct", 0.5), maxc = a.num("max_value_correct", 1.0);
        int64_t max_len = a.integer("max_tokens", 0);
        VerifyOptions o = verify_options_from_args(a);
        a.finish();
        return std::make_unique<Cosine>(o, minw, maxw, minc, maxc, max_len);
      });
  add({"repetition", "n-gram repetition penalty: max_penalty * (1 - unique/total n-grams)",
       "ngram_size=3, max_penalty=-1"},
      [](const StringMap& args) -> std::unique_ptr<RewardFunction> {
        ArgReader a{"repetition", args, {}};
        int64_t n = a.integer("ngram_size", 3);
        double mp = a.num("max_penalty", -1.0);
        RLVR_CONFIG_CHECK(n >= 1 && n <= 64, "reward 'repetition': args.ngram_size must be in [1, 64], got {}", n);
        RLVR_CONFIG_CHECK(mp <= 0, "reward 'repetition': args.max_penalty must be <= 0, got {}", mp);
        a.finish();
        return std::make_unique<Repetition>(n, mp);
      });
  add({"random_reward", "control: 1 with probability `rate`, else 0, independent of the answer (deterministic per completion)",
       "rate=0.5 (probability of 1, in [0, 1]), seed=0"},
      [](const StringMap& args) -> std::unique_ptr<RewardFunction> {
        ArgReader a{"random_reward", args, {}};
        double rate = a.num("rate", 0.5);
        int64_t seed = a.integer("seed", 0);
        RLVR_CONFIG_CHECK(rate >= 0 && rate <= 1, "reward 'random_reward': args.rate must be in [0, 1], got {}", rate);
        a.finish();
        return std::make_unique<RandomReward>(rate, static_cast<uint64_t>(seed));
      });
}

Registry& registry() {
  static Registry* r = [] {
    auto* reg = new Registry;
    register_builtins(*reg);
    return reg;
  }();
  return *r;
}

}  // namespace

void register_reward(const RewardInfo& info, RewardFactory factory) {
  auto& r = registry();
  std::lock_guard<std::mutex> l(r.mu);
  r.fns[info.name] = {info, std::move(factory)};
}

std::vector<RewardInfo> known_rewards() {
  auto& r = registry();
  std::lock_guard<std::mutex> l(r.mu);
  std::vector<RewardInfo> out;
  for (auto& [k, v] : r.fns) out.push_back(v.first);
  return out;
}

std::unique_ptr<RewardFunction> make_reward(const std::string& name, const StringMap& args) {
  RewardFactory f;
  std::vector<std::string> names;
  {
    auto& r = registry();
    std::lock_guard<std::mutex> l(r.mu);
    auto it = r.fns.find(name);
    if (it != r.fns.end()) f = it->second.second;
    for (auto& [k, v] : r.fns) names.push_back(k);
  }
  if (!f) throw ConfigError(fmt::format("unknown reward function '{}' (known: {})", name, fmt::join(names, ", ")));
  return f(args);
}

Rubric Rubric::from_specs(const std::vector<RewardSpec>& specs) {
  Rubric r;
  for (auto& s : specs) {
    RLVR_CONFIG_CHECK(std::isfinite(s.weight), "reward '{}': weight must be finite, got {}", s.name, s.weight);
    r.entries_.push_back({s.name, s.weight, std::shared_ptr<const RewardFunction>(make_reward(s.name, s.args))});
  }
  return r;
}

std::vector<std::string> Rubric::names() const {
  std::vector<std::string> n;
  for (auto& e : entries_) n.push_back(e.name);
  return n;
}
std::vector<double> Rubric::weights() const {
  std::vector<double> w;
  for (auto& e : entries_) w.push_back(e.weight);
  return w;
}

Rubric::Score Rubric::score_one(const CompletionInput& in) const {
  Score s;
  VerifyCache vc(in);
  bool have_verdict = false;
  s.per_function.reserve(entries_.size());
  for (auto& e : entries_) {
    double v = 0.0;
    try {
      v = e.fn->score(in, vc);
      if (!have_verdict && e.fn->has_verdict()) {
        s.verdict = e.fn->verdict(in, vc);
        have_verdict = true;
      }
    } catch (...) {
      v = 0.0;  // reward functions do not throw on text; this is a last line of defence
    }
    s.per_function.push_back(v);
    s.total += e.weight * v;
  }
  return s;
}

std::vector<Rubric::Score> Rubric::score(const std::vector<CompletionInput>& inputs, int threads,
                                         const std::function<void(size_t)>& on_scored) const {
  std::vector<Score> out(inputs.size());
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int nt = std::max(1, std::min<int>(threads, int(inputs.size())));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < inputs.size();) {
      out[i] = score_one(inputs[i]);
      if (on_scored) on_scored(1);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < nt; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return out;
}

}  // namespace rlvr::rewards
