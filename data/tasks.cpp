// Built-in task generators and the split partition (see tasks.h).
#include "data/tasks.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <unordered_set>

#include "common/error.h"
#include "data/rng.h"

namespace rlvr::data {

const char* to_string(Split s) { return s == Split::train ? "train" : "held_out"; }

Split parse_split(const std::string& name) {
  if (name == "train") return Split::train;
  if (name == "held_out" || name == "eval" || name == "test") return Split::held_out;
  throw ConfigError(fmt::format("unknown split '{}'; known: [train, held_out]", name));
}

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names = {"arithmetic", "countdown"};
  return names;
}

std::string builtin_task_name(const std::string& source) {
  const std::string prefix = "builtin:";
  return source.rfind(prefix, 0) == 0 ? source.substr(prefix.size()) : "";
}

namespace {

// One generated problem before it becomes a Record. `key` is its canonical form (split partition and
// duplicate detection).
struct Problem {
  std::string key, prompt, reference, solution;
  nlohmann::json extra = nlohmann::json::object();
};

// 1 in kHeldOutShare of the problem space is held out.
constexpr uint64_t kHeldOutShare = 8;
bool in_split(const std::string& key, Split split) {
  bool held = hash_string(key) % kHeldOutShare == 0;
  return held == (split == Split::held_out);
}

// ---- arithmetic ----

struct ArithLevel {
  int operands;
  int64_t max_operand;
  int64_t max_factor;  // 0 = no multiplication
};
constexpr ArithLevel kArith[kMaxTaskDifficulty] = {
    {2, 99, 0}, {3, 99, 0}, {3, 99, 9}, {4, 99, 19}, {5, 999, 99}, {6, 999, 99}};

Problem make_arithmetic(Rng& rng, int difficulty) {
  const ArithLevel& L = kArith[difficulty - 1];
  std::vector<int64_t> vals;
  std::vector<char> ops;
  vals.push_back(rng.range(1, L.max_operand));
  for (int i = 1; i < L.operands; ++i) {
    int n_ops = L.max_factor > 0 ? 3 : 2;
    char op = "+-*"[rng.below(n_ops)];
    // A factor stays small, and never follows another product (keeps numbers and steps short).
    if (op == '*' && !ops.empty() && ops.back() == '*') op = '+';
    ops.push_back(op);
    vals.push_back(op == '*' ? rng.range(2, L.max_factor) : rng.range(1, L.max_operand));
  }
  std::string expr = std::to_string(vals[0]);
  for (size_t i = 0; i < ops.size(); ++i) expr += ops[i] + std::to_string(vals[i + 1]);

  // Products first (left to right), then sums and differences left to right: one step each.
  std::vector<std::string> steps;
  for (size_t i = 0; i < ops.size();) {
    if (ops[i] != '*') {
      ++i;
      continue;
    }
    int64_t r = vals[i] * vals[i + 1];
    steps.push_back(fmt::format("{}*{}={}", vals[i], vals[i + 1], r));
    vals[i] = r;
    vals.erase(vals.begin() + static_cast<long>(i) + 1);
    ops.erase(ops.begin() + static_cast<long>(i));
  }
  int64_t acc = vals[0];
  for (size_t i = 0; i < ops.size(); ++i) {
    int64_t r = ops[i] == '+' ? acc + vals[i + 1] : acc - vals[i + 1];
    steps.push_back(fmt::format("{}{}{}={}", acc, ops[i], vals[i + 1], r));
    acc = r;
  }
  Problem p;
  p.key = "arithmetic:" + expr;
  p.prompt = fmt::format("Compute {}.", expr);
  p.reference = std::to_string(acc);
  p.solution = fmt::format("{}. \\boxed{{{}}}", fmt::join(steps, ", "), acc);
  p.extra["expression"] = expr;
  return p;
}

// ---- countdown ----

struct CountdownLevel {
  int numbers;
  int64_t max_number;
  int64_t max_target;
  size_t min_ops;  // the shortest solution needs at least this many operations
};
constexpr CountdownLevel kCountdown[kMaxTaskDifficulty] = {
    {3, 10, 100, 1}, {3, 25, 100, 2}, {4, 25, 100, 2}, {4, 100, 1000, 2}, {5, 100, 1000, 3}, {6, 100, 1000, 3}};

// A target reachable from a random subset of at least two numbers, combined at random with positive
// integer intermediates; 0 when the draw failed (the caller draws again).
int64_t random_target(Rng& rng, std::vector<int64_t> pool, int64_t max_target) {
  rng.shuffle(pool);
  pool.resize(static_cast<size_t>(rng.range(2, static_cast<int64_t>(pool.size()))));
  while (pool.size() > 1) {
    size_t i = rng.below(pool.size());
    size_t j = rng.below(pool.size() - 1);
    if (j >= i) ++j;
    int64_t a = pool[i], b = pool[j], v = 0;
    switch (rng.below(4)) {
      case 0: v = a + b; break;
      case 1: v = a - b; break;
      case 2: v = a * b; break;
      case 3: v = (b > 1 && a % b == 0) ? a / b : 0; break;
    }
    if (v <= 0 || v > 100000) return 0;
    pool.erase(pool.begin() + static_cast<long>(std::max(i, j)));
    pool.erase(pool.begin() + static_cast<long>(std::min(i, j)));
    pool.push_back(v);
  }
  return pool[0] <= max_target ? pool[0] : 0;
}

std::optional<Problem> make_countdown(Rng& rng, int difficulty) {
  const CountdownLevel& L = kCountdown[difficulty - 1];
  std::vector<int64_t> nums;
  for (int i = 0; i < L.numbers; ++i) nums.push_back(rng.range(1, L.max_number));
  int64_t target = random_target(rng, nums, L.max_target);
  if (target <= 0 || std::find(nums.begin(), nums.end(), target) != nums.end()) return std::nullopt;
  auto sol = solve_countdown(nums, target);
  if (!sol || sol->steps.size() < L.min_ops) return std::nullopt;
  std::vector<int64_t> sorted = nums;
  std::sort(sorted.begin(), sorted.end());
  Problem p;
  p.key = fmt::format("countdown:{}:{}", fmt::join(sorted, " "), target);
  p.prompt = fmt::format("Make {} from {} using + - * /, each at most once.", target, fmt::join(nums, " "));
  p.reference = std::to_string(target);
  p.solution = fmt::format("{}. \\boxed{{{}}}", fmt::join(sol->steps, ", "), sol->expression);
  p.extra["numbers"] = nums;
  p.extra["target"] = target;
  return p;
}

}  // namespace

Dataset generate_task(const std::string& name, int difficulty, int64_t count, uint64_t seed, Split split) {
  auto known = task_names();
  RLVR_CONFIG_CHECK(std::find(known.begin(), known.end(), name) != known.end(), "unknown task '{}'; known: [{}]",
                    name, fmt::join(known, ", "));
  RLVR_CONFIG_CHECK(difficulty >= 1 && difficulty <= kMaxTaskDifficulty,
                    "task difficulty must be in [1, {}], got {}", kMaxTaskDifficulty, difficulty);
  RLVR_CONFIG_CHECK(count >= 0, "task size must be >= 0, got {}", count);
  std::function<std::optional<Problem>(Rng&)> make;
  if (name == "arithmetic")
    make = [difficulty](Rng& r) -> std::optional<Problem> { return make_arithmetic(r, difficulty); };
  else
    make = [difficulty](Rng& r) { return make_countdown(r, difficulty); };

  // Disjoint seed streams per split (and task, level); the hash partition makes the splits disjoint.
  Rng rng(combine_seed({seed, hash_string(name), static_cast<uint64_t>(difficulty),
                        split == Split::train ? 0x7a41aULL : 0x4e1d0ULL}));
  Dataset out;
  out.reserve(static_cast<size_t>(count));
  std::unordered_set<std::string> seen;
  int repeats = 0;
  int64_t draws = 0;
  const int64_t max_draws = 1000 * (count + 10);  // the held-out share is 1/8; failed countdown draws
  while (static_cast<int64_t>(out.size()) < count) {
    RLVR_CHECK(++draws <= max_draws, "task {} d{}: gave up after {} draws for {} problems", name, difficulty,
               draws, count);
    auto p = make(rng);
    if (!p || !in_split(p->key, split)) continue;
    if (seen.count(p->key) && ++repeats < 64) continue;
    repeats = 0;
    seen.insert(p->key);
    Record r;
    r.id = fmt::format("{}-d{}-{}-{}", name, difficulty, to_string(split), out.size());
    r.prompt = std::move(p->prompt);
    r.reference = std::move(p->reference);
    r.solution = std::move(p->solution);
    r.extra = std::move(p->extra);
    r.extra["task"] = name;
    r.extra["difficulty"] = difficulty;
    r.extra["split"] = to_string(split);
    out.push_back(std::move(r));
  }
  return out;
}

CountdownVerdict check_countdown_record(std::string_view answer, const Record& record) {
  const auto& e = record.extra;
  RLVR_CHECK(e.is_object() && e.contains("numbers") && e.contains("target") && e["numbers"].is_array() &&
                 e["target"].is_number_integer(),
             "record '{}' is not a countdown record (extra needs numbers and target)", record.id);
  return check_countdown(answer, e["numbers"].get<std::vector<int64_t>>(), e["target"].get<int64_t>());
}

}  // namespace rlvr::data
