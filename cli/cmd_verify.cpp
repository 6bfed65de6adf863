// `rlvr verify`: checks answers with the rule-based verifier (rewards/verifier.h).
//   rlvr verify --gold G --pred P        verdict and both extracted answers
//   rlvr verify --cases F.jsonl          one JSON line per case {"index","verdict","pred_extracted",
//                                        "gold_extracted"}, in order; summary on stderr ("-" reads stdin)
//   rlvr verify --list-rewards           the registered reward functions and their arguments
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"
#include "rewards/cases.h"

namespace rlvr::cli {

void add_verify(CLI::App& app, Action& run) {
  struct Opts {
    std::string gold, pred, cases;
    bool list = false;
    int threads = 4;
    int float_rounding = 6;
    bool strict_extraction = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("verify", "check a completion against a reference answer (rule-based verifier)");
  sub->add_option("--gold", o->gold, "reference answer");
  sub->add_option("--pred", o->pred, "model completion (the answer is extracted from it)");
  sub->add_option("--cases", o->cases, "JSON Lines file of {gold, pred, config?} ('-' for stdin)");
  sub->add_flag("--list-rewards", o->list, "list the registered reward functions");
  sub->add_option("--threads", o->threads, "threads for --cases")->check(CLI::Range(1, 256));
  sub->add_option("--float-rounding", o->float_rounding, "decimal places compared when a decimal is involved")
      ->check(CLI::Range(0, 15));
  sub->add_flag("--strict-extraction", o->strict_extraction,
                "only anchored answers (\\boxed, <answer>, 'answer is', $..$), no last-number fallback");
  sub->callback([&run, o] {
    run = [o] {
      rewards::VerifyOptions opt;
      opt.float_rounding = o->float_rounding;
      if (o->strict_extraction) {
        opt.strict_extraction = true;
        opt.expr = false;
      }
      if (o->list) return rewards::list_rewards(std::cout);
      if (!o->cases.empty()) {
        if (o->cases == "-") return rewards::run_cases(std::cin, std::cout, std::cerr, o->threads, opt);
        std::ifstream f(o->cases);
        RLVR_CONFIG_CHECK(bool(f), "verify: cannot open --cases file '{}'", o->cases);
        return rewards::run_cases(f, std::cout, std::cerr, o->threads, opt);
      }
      RLVR_CONFIG_CHECK(!o->gold.empty() || !o->pred.empty(),
                        "verify: give --gold and --pred, or --cases FILE, or --list-rewards");
      return rewards::run_pair(o->gold, o->pred, std::cout, opt);
    };
  });
}

}  // namespace rlvr::cli
