// Confidence summaries and votes over sampled paths (see voting.h for the definitions and papers).
#include "data/voting.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "common/error.h"

namespace rlvr::data {

std::vector<double> confidence_prefix_sums(const std::vector<float>& token_conf) {
  std::vector<double> p(token_conf.size() + 1, 0.0);
  for (size_t i = 0; i < token_conf.size(); ++i) p[i + 1] = p[i] + static_cast<double>(token_conf[i]);
  return p;
}

std::vector<double> group_confidences(const std::vector<float>& token_conf, int64_t window) {
  RLVR_CHECK(window >= 1, "confidence window must be >= 1, got {}", window);
  const int64_t n = static_cast<int64_t>(token_conf.size());
  if (n == 0) return {};
  const auto p = confidence_prefix_sums(token_conf);
  if (n < window) return {p[n] / static_cast<double>(n)};
  std::vector<double> g;
  g.reserve(n - window + 1);
  for (int64_t t = window; t <= n; ++t) g.push_back((p[t] - p[t - window]) / static_cast<double>(window));
  return g;
}

TraceConfidence trace_confidence(const std::vector<float>& token_conf, int64_t window, int64_t tail) {
  RLVR_CHECK(tail >= 1, "confidence tail must be >= 1, got {}", tail);
  TraceConfidence c;
  const int64_t n = static_cast<int64_t>(token_conf.size());
  if (n == 0) return c;
  const auto p = confidence_prefix_sums(token_conf);
  c.mean = p[n] / static_cast<double>(n);
  auto g = group_confidences(token_conf, window);
  c.lowest = *std::min_element(g.begin(), g.end());
  std::sort(g.begin(), g.end());
  const size_t nb = std::max<size_t>(1, static_cast<size_t>(std::ceil(0.1 * static_cast<double>(g.size()))));
  c.bottom10 = std::accumulate(g.begin(), g.begin() + nb, 0.0) / static_cast<double>(nb);
  const int64_t nt = std::min(n, tail);
  c.tail = (p[n] - p[n - nt]) / static_cast<double>(nt);
  return c;
}

const char* to_string(ConfMeasure m) {
  switch (m) {
    case ConfMeasure::mean: return "mean";
    case ConfMeasure::lowest: return "lowest";
    case ConfMeasure::bottom10: return "bottom10";
    case ConfMeasure::tail: return "tail";
  }
  return "?";
}

double measure(const TraceConfidence& c, ConfMeasure m) {
  switch (m) {
    case ConfMeasure::mean: return c.mean;
    case ConfMeasure::lowest: return c.lowest;
    case ConfMeasure::bottom10: return c.bottom10;
    case ConfMeasure::tail: return c.tail;
  }
  return 0;
}

VoteResult weighted_vote(const std::vector<Path>& paths, const std::vector<double>& weights,
                         const std::vector<char>& keep) {
  RLVR_CHECK(weights.size() == paths.size() && keep.size() == paths.size(),
             "weighted_vote: {} paths, {} weights, {} keep flags", paths.size(), weights.size(), keep.size());
  std::unordered_map<int64_t, double> total;
  std::unordered_map<int64_t, size_t> first;
  VoteResult r;
  for (size_t i = 0; i < paths.size(); ++i) {
    const auto& p = paths[i];
    if (!keep[i] || p.stopped || p.cluster < 0) continue;
    ++r.voters;
    if (!first.count(p.cluster)) first[p.cluster] = i;
    total[p.cluster] += weights[i];
  }
  if (total.empty()) return r;
  for (const auto& [cl, w] : total) {
    if (r.cluster < 0 || w > total[r.cluster] || (w == total[r.cluster] && first[cl] < first[r.cluster]))
      r.cluster = cl;
  }
  r.correct = paths[first[r.cluster]].correct;
  return r;
}

std::vector<char> top_eta_mask(const std::vector<double>& scores, double eta) {
  RLVR_CHECK(eta > 0 && eta <= 100, "eta must be in (0, 100], got {}", eta);
  const size_t n = scores.size();
  std::vector<char> keep(n, 0);
  if (n == 0) return keep;
  // ceil with a guard against 10% of 10 paths rounding to 1.0000000002 -> 2
  const size_t want = std::clamp<size_t>(
      static_cast<size_t>(std::ceil(eta / 100.0 * static_cast<double>(n) - 1e-9)), 1, n);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  for (size_t i = 0; i < want; ++i) keep[order[i]] = 1;
  return keep;
}

VoteResult majority_vote(const std::vector<Path>& paths) {
  return weighted_vote(paths, std::vector<double>(paths.size(), 1.0), std::vector<char>(paths.size(), 1));
}

VoteResult confidence_vote(const std::vector<Path>& paths, ConfMeasure m, double eta) {
  std::vector<size_t> live;  // stopped paths neither vote nor take a place in the top eta
  for (size_t i = 0; i < paths.size(); ++i)
    if (!paths[i].stopped) live.push_back(i);
  std::vector<double> w(paths.size(), 0.0), live_scores;
  for (size_t i = 0; i < paths.size(); ++i) w[i] = measure(paths[i].conf, m);
  for (size_t i : live) live_scores.push_back(w[i]);
  std::vector<char> keep(paths.size(), 0);
  const auto mask = top_eta_mask(live_scores, eta);
  for (size_t j = 0; j < live.size(); ++j) keep[live[j]] = mask[j];
  return weighted_vote(paths, w, keep);
}

VoteResult short_m_vote(const std::vector<Path>& paths, int64_t m) {
  RLVR_CHECK(m >= 1, "short-m@k needs m >= 1, got {}", m);
  std::vector<size_t> fin;
  for (size_t i = 0; i < paths.size(); ++i)
    if (paths[i].finished && !paths[i].stopped) fin.push_back(i);
  std::stable_sort(fin.begin(), fin.end(), [&](size_t a, size_t b) { return paths[a].tokens < paths[b].tokens; });
  if (fin.size() > static_cast<size_t>(m)) fin.resize(m);
  // Reorder the chosen paths shortest first so that a tie in votes goes to the shorter path's class.
  std::vector<Path> chosen;
  for (size_t i : fin) chosen.push_back(paths[i]);
  return majority_vote(chosen);
}

int64_t short_m_tokens(const std::vector<Path>& paths, int64_t m) {
  RLVR_CHECK(m >= 1, "short-m@k needs m >= 1, got {}", m);
  std::vector<int64_t> fin;
  int64_t all = 0;
  for (const auto& p : paths) {
    all += p.tokens;
    if (p.finished && !p.stopped) fin.push_back(p.tokens);
  }
  if (fin.size() < static_cast<size_t>(m)) return all;
  std::nth_element(fin.begin(), fin.begin() + (m - 1), fin.end());
  const int64_t lm = fin[m - 1];
  int64_t sum = 0;
  for (const auto& p : paths) sum += std::min(p.tokens, lm);
  return sum;
}

double online_threshold(const std::vector<double>& warmup_lowest, double eta) {
  RLVR_CHECK(!warmup_lowest.empty(), "the online threshold needs at least one warm-up path");
  RLVR_CHECK(eta > 0 && eta <= 100, "eta must be in (0, 100], got {}", eta);
  auto v = warmup_lowest;
  std::sort(v.begin(), v.end());
  const double pos = (100.0 - eta) / 100.0 * static_cast<double>(v.size() - 1);  // numpy 'linear'
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

VoteResult threshold_vote(const std::vector<Path>& paths, double threshold) {
  std::vector<double> w(paths.size());
  std::vector<char> keep(paths.size());
  for (size_t i = 0; i < paths.size(); ++i) {
    w[i] = paths[i].conf.lowest;
    keep[i] = !paths[i].stopped && paths[i].conf.lowest >= threshold;
  }
  return weighted_vote(paths, w, keep);
}

namespace {
const char* kMenu = "maj | conf-<mean|lowest|bottom10|tail>[@eta] | short-<m> | online-low | online-high";
}

AggregateMethod parse_aggregate(const std::string& name) {
  AggregateMethod a;
  a.name = name;
  auto bad = [&](const std::string& why) {
    return ConfigError(fmt::format("unknown --aggregate method '{}'{}; known: {}", name, why, kMenu));
  };
  if (name == "maj") return a;
  if (name == "online-low" || name == "online-high") {
    a.kind = AggregateMethod::Kind::online;
    a.measure = ConfMeasure::lowest;
    a.eta = name == "online-low" ? 10 : 90;
    return a;
  }
  if (name.rfind("short-", 0) == 0) {
    a.kind = AggregateMethod::Kind::short_m;
    const std::string m = name.substr(6);
    if (m.empty() || m.find_first_not_of("0123456789") != std::string::npos || m.size() > 6) throw bad(": m must be an integer");
    a.m = std::stoll(m);
    if (a.m < 1) throw bad(": m must be >= 1");
    return a;
  }
  if (name.rfind("conf-", 0) == 0) {
    a.kind = AggregateMethod::Kind::conf;
    std::string rest = name.substr(5), meas = rest;
    const auto at = rest.find('@');
    if (at != std::string::npos) {
      meas = rest.substr(0, at);
      const std::string e = rest.substr(at + 1);
      char* end = nullptr;
      a.eta = std::strtod(e.c_str(), &end);
      if (e.empty() || end != e.c_str() + e.size() || !(a.eta > 0 && a.eta <= 100)) throw bad(": eta must be in (0, 100]");
    }
    if (meas == "mean") a.measure = ConfMeasure::mean;
    else if (meas == "lowest") a.measure = ConfMeasure::lowest;
    else if (meas == "bottom10") a.measure = ConfMeasure::bottom10;
    else if (meas == "tail") a.measure = ConfMeasure::tail;
    else throw bad("");
    return a;
  }
  throw bad("");
}

std::vector<AggregateMethod> parse_aggregates(const std::string& comma_list) {
  std::vector<AggregateMethod> out;
  size_t i = 0;
  while (i <= comma_list.size()) {
    size_t j = comma_list.find(',', i);
    if (j == std::string::npos) j = comma_list.size();
    std::string item = comma_list.substr(i, j - i);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) {
      auto a = parse_aggregate(item);
      bool dup = false;
      for (const auto& b : out) dup = dup || b.name == a.name;
      if (!dup) out.push_back(a);
    }
    i = j + 1;
  }
  return out;
}

}  // namespace rlvr::data
