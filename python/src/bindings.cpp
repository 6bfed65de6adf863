// rlvr_verify._core: pybind11 bindings of the rule-based verifier (rewards/verifier.h) and the reward rubric
// (rewards/rubric.h). The batch calls release the GIL and run on their own thread pool; the verifier never
// throws on text, so a worker never has to hand an exception back. The Python layer (__init__.py) adds
// keyword options and the TRL / verl adapters.
#include <pybind11/pybind11.h>
#include <pybind11/operators.h>
#include <pybind11/stl.h>

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/config_io.h"
#include "common/error.h"
#include "rewards/cases.h"
#include "rewards/reward_spec.h"
#include "rewards/rubric.h"
#include "rewards/verifier.h"

namespace py = pybind11;
using namespace rlvr::rewards;

namespace {

// Runs fn(i) for i in [0, n) on `threads` threads (0: hardware concurrency), the calling one included.
void parallel_for(size_t n, int threads, const std::function<void(size_t)>& fn) {
  int nt = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  nt = std::max(1, std::min<int>(nt, static_cast<int>(n)));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) fn(i);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < nt; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

// The `rewards:` list of an rlvr config (or a bare list), read by the same visitor as `rlvr train`.
std::vector<rlvr::RewardSpec> read_reward_specs(const std::string& yaml_text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw rlvr::ConfigError(file + ": invalid YAML: " + e.what());
  }
  YAML::Node list = root.IsMap() ? root["rewards"] : root;
  if (!list || list.IsNull()) throw rlvr::ConfigError(file + ": no `rewards:` list");
  if (!list.IsSequence())
    throw rlvr::ConfigError("rewards must be a list of {name, weight, args} (" + rlvr::node_location(list, file) + ")");
  std::vector<rlvr::RewardSpec> out;
  for (size_t i = 0; i < list.size(); ++i) {
    rlvr::RewardSpec s;
    rlvr::YamlReader r(list[i], "rewards[" + std::to_string(i) + "]", file);
    s.visit(r);
    r.finish();
    if (s.name.empty())
      throw rlvr::ConfigError("rewards[" + std::to_string(i) + "].name is missing (" +
                              rlvr::node_location(list[i], file) + ")");
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "rlvr's rule-based math verifier and reward rubric (C++ core)";
  py::register_exception<rlvr::ConfigError>(m, "ConfigError", PyExc_ValueError);

  py::class_<VerifyOptions>(m, "Options", "Verifier options (see docs/rewards.md); keyword fields as in C++")
      .def(py::init<>())
      .def_readwrite("latex", &VerifyOptions::latex)
      .def_readwrite("expr", &VerifyOptions::expr)
      .def_readwrite("letters", &VerifyOptions::letters)
      .def_readwrite("answer_tag", &VerifyOptions::answer_tag)
      .def_readwrite("boxed", &VerifyOptions::boxed)
      .def_readwrite("boxed_first", &VerifyOptions::boxed_first)
      .def_readwrite("last_bracket", &VerifyOptions::last_bracket)
      .def_readwrite("malformed_operators", &VerifyOptions::malformed_operators)
      .def_readwrite("strict_extraction", &VerifyOptions::strict_extraction)
      .def_readwrite("float_rounding", &VerifyOptions::float_rounding)
      .def_readwrite("rel_tol", &VerifyOptions::rel_tol)
      .def_readwrite("strict", &VerifyOptions::strict)
      .def_readwrite("allow_set_relation", &VerifyOptions::allow_set_relation)
      .def_readwrite("percent_flexible", &VerifyOptions::percent_flexible)
      .def_readwrite("ordered_lists", &VerifyOptions::ordered_lists)
      .def_readwrite("max_completion_chars", &VerifyOptions::max_completion_chars)
      .def_readwrite("scan_tail_chars", &VerifyOptions::scan_tail_chars)
      .def_readwrite("max_answer_chars", &VerifyOptions::max_answer_chars)
      .def_readwrite("max_depth", &VerifyOptions::max_depth)
      .def_readwrite("max_nodes", &VerifyOptions::max_nodes)
      .def_readwrite("max_exponent", &VerifyOptions::max_exponent)
      .def_readwrite("max_work", &VerifyOptions::max_work)
      .def(py::self == py::self);

  py::class_<VerifyResult>(m, "Verdict", "Outcome of one check: verdict, both extracted answers, reason")
      .def_property_readonly("verdict", [](const VerifyResult& r) { return std::string(verdict_name(r.verdict)); })
      .def_readonly("pred_extracted", &VerifyResult::pred_extracted)
      .def_readonly("gold_extracted", &VerifyResult::gold_extracted)
      .def_readonly("reason", &VerifyResult::reason)
      .def_property_readonly("correct", [](const VerifyResult& r) { return r.verdict == Verdict::correct; })
      .def_property_readonly("ungradable", [](const VerifyResult& r) { return r.verdict == Verdict::ungradable; })
      .def("__repr__", [](const VerifyResult& r) {
        return "Verdict(verdict='" + std::string(verdict_name(r.verdict)) + "', pred_extracted=" +
               py::repr(py::str(r.pred_extracted)).cast<std::string>() +
               ", gold_extracted=" + py::repr(py::str(r.gold_extracted)).cast<std::string>() +
               ", reason=" + py::repr(py::str(r.reason)).cast<std::string>() + ")";
      });

  m.def(
      "verify",
      [](const std::string& gold, const std::string& pred, const VerifyOptions& opt) {
        py::gil_scoped_release nogil;
        return verify(pred, gold, opt);
      },
      py::arg("gold"), py::arg("pred"), py::arg("options"));

  m.def(
      "verify_batch",
      [](const std::vector<std::string>& golds, const std::vector<std::string>& preds,
         const std::vector<VerifyOptions>& opts, int threads) {
        if (golds.size() != preds.size())
          throw std::invalid_argument("verify_batch: " + std::to_string(golds.size()) + " golds but " +
                                      std::to_string(preds.size()) + " preds");
        if (opts.size() != 1 && opts.size() != golds.size())
          throw std::invalid_argument("verify_batch: options must be one or one per pair, got " +
                                      std::to_string(opts.size()));
        std::vector<VerifyResult> out(golds.size());
        py::gil_scoped_release nogil;
        parallel_for(golds.size(), threads, [&](size_t i) {
          out[i] = verify(preds[i], golds[i], opts.size() == 1 ? opts[0] : opts[i]);
        });
        return out;
      },
      py::arg("golds"), py::arg("preds"), py::arg("options"), py::arg("threads"));

  m.def(
      "extract_answer",
      [](const std::string& completion, const VerifyOptions& opt) {
        py::gil_scoped_release nogil;
        return extract_answer(completion, opt);
      },
      py::arg("completion"), py::arg("options"));
  m.def(
      "extract_gold", [](const std::string& gold, const VerifyOptions& opt) { return extract_gold(gold, opt); },
      py::arg("gold"), py::arg("options"));
  m.def(
      "answers_equivalent",
      [](const std::string& a, const std::string& b, const VerifyOptions& opt) {
        py::gil_scoped_release nogil;
        return answers_equivalent(a, b, opt);
      },
      py::arg("a"), py::arg("b"), py::arg("options"));
  m.def(
      "options_from_peer_config",
      [](const std::string& config_json, const VerifyOptions& base) {
        auto j = nlohmann::json::parse(config_json, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded()) throw std::invalid_argument("options_from_peer_config: invalid JSON");
        return options_from_config(j, base);
      },
      py::arg("config_json"), py::arg("base"));

  py::class_<RewardInfo>(m, "RewardInfo")
      .def_readonly("name", &RewardInfo::name)
      .def_readonly("description", &RewardInfo::description)
      .def_readonly("args", &RewardInfo::args)
      .def("__repr__", [](const RewardInfo& r) { return "RewardInfo('" + r.name + "')"; });
  m.def("list_rewards", &known_rewards);

  py::class_<Rubric::Score>(m, "Score", "Rubric score: weighted total, unweighted per-function values, verdict")
      .def_readonly("total", &Rubric::Score::total)
      .def_readonly("per_function", &Rubric::Score::per_function)
      .def_property_readonly("verdict", [](const Rubric::Score& s) { return std::string(verdict_name(s.verdict)); })
      .def("__repr__", [](const Rubric::Score& s) {
        return "Score(total=" + py::repr(py::float_(s.total)).cast<std::string>() + ", verdict='" +
               verdict_name(s.verdict) + "')";
      });

  py::class_<Rubric>(m, "Rubric")
      .def_static(
          "from_yaml_text",
          [](const std::string& text, const std::string& file) { return Rubric::from_specs(read_reward_specs(text, file)); },
          py::arg("text"), py::arg("file"))
      .def_static(
          "from_specs",
          [](const std::vector<std::tuple<std::string, double, std::map<std::string, std::string>>>& specs) {
            std::vector<rlvr::RewardSpec> s;
            for (auto& [name, weight, args] : specs) s.push_back({name, weight, args});
            return Rubric::from_specs(s);
          },
          py::arg("specs"))
      .def_property_readonly("names", &Rubric::names)
      .def_property_readonly("weights", &Rubric::weights)
      .def(
          "score",
          [](const Rubric& r, const std::vector<std::string>& completions, const std::vector<std::string>& references,
             const std::vector<bool>& truncated, const std::vector<int64_t>& num_tokens, int64_t max_tokens,
             int threads) {
            const size_t n = completions.size();
            if (references.size() != n)
              throw std::invalid_argument("Rubric.score: " + std::to_string(n) + " completions but " +
                                          std::to_string(references.size()) + " references");
            if ((!truncated.empty() && truncated.size() != n) || (!num_tokens.empty() && num_tokens.size() != n))
              throw std::invalid_argument("Rubric.score: truncated / num_tokens must have one entry per completion");
            std::vector<CompletionInput> in(n);
            for (size_t i = 0; i < n; ++i) {
              in[i].completion = completions[i];
              in[i].reference = references[i];
              in[i].truncated = truncated.empty() ? false : bool(truncated[i]);
              in[i].num_tokens = num_tokens.empty() ? 0 : num_tokens[i];
              in[i].max_tokens = max_tokens;
            }
            std::vector<Rubric::Score> out(n);
            py::gil_scoped_release nogil;
            parallel_for(n, threads, [&](size_t i) { out[i] = r.score_one(in[i]); });
            return out;
          },
          py::arg("completions"), py::arg("references"), py::arg("truncated"), py::arg("num_tokens"),
          py::arg("max_tokens"), py::arg("threads"));
}
