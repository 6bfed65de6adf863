// `rlvr verify` front end (see cases.h).
#include "rewards/cases.h"

#include "rewards/rubric.h"

#include <atomic>
#include <chrono>
#include <istream>
#include <ostream>
#include <thread>
#include <vector>

namespace rlvr::rewards {

namespace {

bool has(const std::string& s, const char* needle) { return s.find(needle) != std::string::npos; }

}  // namespace

VerifyOptions options_from_config(const nlohmann::json& c, const VerifyOptions& base) {
  VerifyOptions o = base;
  if (!c.is_object()) return o;
  std::string api = c.value("api", "");
  if (c.contains("float_rounding") && c["float_rounding"].is_number_integer()) o.float_rounding = c["float_rounding"];
  if (c.contains("strict") && c["strict"].is_boolean()) o.strict = c["strict"];
  if (c.contains("allow_set_relation_comp") && c["allow_set_relation_comp"].is_boolean())
    o.allow_set_relation = c["allow_set_relation_comp"];
  if (c.contains("extraction_config") && c["extraction_config"].is_array()) {
    bool latex = false, expr = false, letters = false, strings = false;
    for (auto& e : c["extraction_config"]) {
      if (!e.is_string()) continue;
      std::string s = e;
      if (has(s, "LatexExtractionConfig")) {
        latex = true;
        if (has(s, "boxed_match_priority=-1")) o.boxed = false;
        // Math-Verify: boxed priority 0 beats "final answer is" (50); 55 / 100 lose to it.
        if (has(s, "boxed_match_priority=55") || has(s, "boxed_match_priority=100") ||
            has(s, "lighteval default boxed_match_priority=55"))
          o.boxed_first = false;
        if (has(s, "malformed_operators=False")) o.malformed_operators = false;
      }
      if (has(s, "ExprExtractionConfig")) expr = true;
      if (has(s, "IndicesExtractionConfig")) letters = true;
      if (has(s, "StringExtractionConfig")) strings = true;
    }
    o.latex = latex;
    o.expr = expr;
    if (letters || strings) o.letters = 1;
    if (!latex && !expr && (letters || strings)) { o.latex = true; o.expr = true; }
  }
  if (c.contains("pre_extraction") && c["pre_extraction"].is_string() && has(c["pre_extraction"], "bracket"))
    o.last_bracket = true;
  if (has(api, "hendrycks")) o.ordered_lists = true;
  if (has(api, "qwen")) o.rel_tol = 1e-4, o.float_rounding = 3;
  return o;
}

int list_rewards(std::ostream& out) {
  for (auto& r : known_rewards()) {
    out << r.name << ": " << r.description << "\n";
    if (!r.args.empty()) out << "    args: " << r.args << "\n";
  }
  return 0;
}

int run_pair(const std::string& gold, const std::string& pred, std::ostream& out, const VerifyOptions& opt) {
  VerifyResult r = verify(pred, gold, opt);
  out << "verdict: " << verdict_name(r.verdict) << "\n";
  out << "pred_extracted: " << r.pred_extracted << "\n";
  out << "gold_extracted: " << r.gold_extracted << "\n";
  out << "reason: " << r.reason << "\n";
  return 0;
}

int run_cases(std::istream& in, std::ostream& out, std::ostream& err, int threads, const VerifyOptions& base) {
  struct Case {
    std::string gold, pred, error;
    VerifyOptions opt;
  };
  std::vector<Case> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Case c;
    c.opt = base;
    try {
      auto j = nlohmann::json::parse(line);
      if (!j.contains("gold") || !j.contains("pred")) c.error = "missing gold or pred";
      else {
        c.gold = j["gold"].is_string() ? j["gold"].get<std::string>() : j["gold"].dump();
        c.pred = j["pred"].is_string() ? j["pred"].get<std::string>() : j["pred"].dump();
        if (j.contains("config")) c.opt = options_from_config(j["config"], base);
      }
    } catch (const std::exception& e) {
      c.error = std::string("bad JSON: ") + e.what();
    }
    cases.push_back(std::move(c));
  }
  std::vector<VerifyResult> res(cases.size());
  auto t0 = std::chrono::steady_clock::now();
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next++) < cases.size();) {
      if (!cases[i].error.empty()) { res[i].reason = cases[i].error; continue; }
      res[i] = verify(cases[i].pred, cases[i].gold, cases[i].opt);
    }
  };
  int nt = std::max(1, threads);
  std::vector<std::thread> pool;
  for (int t = 1; t < nt; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  size_t counts[3] = {0, 0, 0};
  for (size_t i = 0; i < cases.size(); ++i) {
    nlohmann::json o;
    o["index"] = i;
    o["verdict"] = verdict_name(res[i].verdict);
    o["pred_extracted"] = res[i].pred_extracted;
    o["gold_extracted"] = res[i].gold_extracted;
    if (!cases[i].error.empty()) o["error"] = cases[i].error;
    out << o.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    counts[int(res[i].verdict)]++;
  }
  err << "cases: " << cases.size() << "  correct: " << counts[0] << "  wrong: " << counts[1]
      << "  ungradable: " << counts[2] << "  time: " << secs << " s\n";
  // Every line still gets its output line (indices stay aligned), but bad input lines fail the command.
  size_t bad = 0;
  for (size_t i = 0; i < cases.size(); ++i)
    if (!cases[i].error.empty() && bad++ == 0)
      err << "error: case line " << i + 1 << ": " << cases[i].error << "\n";
  if (bad > 0) {
    err << "error: " << bad << " input line(s) could not be read (reported as ungradable with an \"error\" field)\n";
    return 1;
  }
  return 0;
}

}  // namespace rlvr::rewards
