// `rlvr data check` (a report on a JSONL dataset, optionally a filtered copy) and `rlvr data generate`
// (write a builtin task split as JSONL). The checks live in data/data_check.h; this file wires in the
// verifier (rewards/), the tokenizer and chat template (model/) and the run config.
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "common/error.h"
#include "common/fs.h"
#include "common/log.h"
#include "data/data_check.h"
#include "data/tasks.h"
#include "data/templates.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"
#include "rewards/verifier.h"
#include "trainer/config.h"

namespace rlvr::cli {
namespace {

struct CheckOpts {
  std::string data;
  std::string config;
  std::string output;
  std::string tokenizer;
  int64_t max_prompt_chars = -1;  // -1: 4 x data.max_prompt_tokens
  bool json = false;
};

// The verifier can grade a reference when its gold form parses: rewards::compare_answers returns
// `ungradable` exactly when the gold side does not parse (or hits a cap), whatever the prediction.
bool reference_gradable(const std::string& reference) {
  rewards::VerifyOptions opt;
  std::string gold = rewards::extract_gold(reference, opt);
  return rewards::compare_answers("", gold, opt) != rewards::Verdict::ungradable;
}

int run_check(const CheckOpts& o) {
  Config cfg = load_config(o.config);
  data::CheckOptions c;
  c.mapping.prompt_key = cfg.data.prompt_key;
  c.mapping.answer_key = cfg.data.answer_key;
  c.reference_gradable = reference_gradable;
  c.output = o.output;
  if (!o.tokenizer.empty()) {
    auto tok = std::make_shared<model::Tokenizer>(model::Tokenizer::from_file(o.tokenizer));
    data::ChatFn chat;
    if (cfg.model.chat_template != "none") {
      std::string name = cfg.model.chat_template;
      chat = [name](const std::string& msg) {
        return model::apply_chat_template(name, {{"user", msg}}, /*add_generation_prompt=*/true);
      };
    }
    std::string templ = cfg.data.templ, templ_string = cfg.data.template_string;
    data::check_template(templ, templ_string, static_cast<bool>(chat));
    // Tokens of the prompt as the policy sees it: rendered with data.template.
    c.count_tokens = [tok, chat, templ, templ_string](const data::Record& r) {
      return static_cast<int64_t>(tok->encode(data::render_prompt(templ, templ_string, r.prompt, chat)).size());
    };
    c.max_prompt_tokens = cfg.data.max_prompt_tokens;
  } else {
    c.max_prompt_chars = o.max_prompt_chars >= 0 ? o.max_prompt_chars : 4 * int64_t{cfg.data.max_prompt_tokens};
  }
  data::CheckReport rep = data::check_dataset(o.data, c);
  if (o.json)
    std::cout << rep.to_json().dump() << "\n";
  else
    std::cout << rep.text();
  if (rep.invalid_json > 0) {
    log::error("{}: {} lines are not JSON objects", o.data, rep.invalid_json);
    return static_cast<int>(ExitCode::runtime);
  }
  return 0;
}

struct GenerateOpts {
  std::string task = "arithmetic";
  int difficulty = 1;
  int64_t count = 100;
  int64_t seed = 1234;
  std::string split = "train";
  std::string output;
};

int run_generate(const GenerateOpts& o) {
  auto recs = data::generate_task(o.task, o.difficulty, o.count, static_cast<uint64_t>(o.seed),
                                  data::parse_split(o.split));
  std::string text;
  for (const auto& r : recs) text += data::to_json(r).dump() + "\n";
  if (o.output.empty() || o.output == "-") {
    std::cout << text;
  } else {
    write_file_atomic(o.output, text);
    log::info("wrote {} {} problems (difficulty {}, {} split) to {}", recs.size(), o.task, o.difficulty, o.split,
              o.output);
  }
  return 0;
}

}  // namespace

void add_data(CLI::App& app, Action& run) {
  auto* data = app.add_subcommand("data", "dataset tools: check a JSONL dataset, generate builtin tasks");
  data->require_subcommand(1);

  auto co = std::make_shared<CheckOpts>();
  auto* check = data->add_subcommand(
      "check", "count records, gradable references, duplicate and over-long prompts; optionally write a filtered copy");
  check->add_option("--data,-d", co->data, "JSONL dataset")->required();
  check->add_option("--config,-c", co->config, "run config (data.prompt_key/answer_key/template/max_prompt_tokens)");
  check->add_option("--output,-o", co->output, "write the records that pass every check here (atomically)");
  check->add_option("--tokenizer", co->tokenizer,
                    "tokenizer directory: measure prompts in tokens (rendered with data.template) against "
                    "data.max_prompt_tokens");
  check->add_option("--max-prompt-chars", co->max_prompt_chars,
                    "without --tokenizer: character limit (default 4 x data.max_prompt_tokens; 0 = off)");
  check->add_flag("--json", co->json, "print the report as one JSON object");
  check->callback([&run, co] { run = [co] { return run_check(*co); }; });

  auto go = std::make_shared<GenerateOpts>();
  auto* gen = data->add_subcommand("generate", "write a builtin task split as JSONL (id, prompt, answer, solution)");
  gen->add_option("--task,-t", go->task, "arithmetic | countdown");
  gen->add_option("--difficulty", go->difficulty, "level, 1 = easiest");
  gen->add_option("--count,-n", go->count, "problems");
  gen->add_option("--seed", go->seed, "generation seed (run.seed)");
  gen->add_option("--split", go->split, "train | held_out");
  gen->add_option("--output,-o", go->output, "output JSONL (default stdout)");
  gen->callback([&run, go] { run = [go] { return run_generate(*go); }; });
}

}  // namespace rlvr::cli
