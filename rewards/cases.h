// The `rlvr verify` front end without CLI11 or LibTorch, shared by cli/cmd_verify.cpp and the
// bench/tests tools: one-pair verification, JSONL case files (with per-case peer `config`), and the
// mapping from a peer's extraction config (Math-Verify / lighteval / AReaL / hendrycks style) to
// VerifyOptions.
#pragma once
#include <iosfwd>
#include <string>

#include <nlohmann/json.hpp>

#include "rewards/verifier.h"

namespace rlvr::rewards {

// VerifyOptions for a case's `config` object (null or missing fields -> defaults; fields the verifier does not
// read, such as a peer's notes, are ignored). A field it reads with the wrong type or range, or a config that
// is not an object, throws Error naming the field.
VerifyOptions options_from_config(const nlohmann::json& config, const VerifyOptions& base = {});

// Reads JSON Lines {"gold", "pred", "config"?} from `in`, writes one {"index", "verdict",
// "pred_extracted", "gold_extracted"} line per case to `out` (in order, scored on `threads` threads) and
// a summary to `err`. Malformed lines (bad JSON, a gold or pred that is not a string or number, an invalid
// config) produce verdict "ungradable" with an "error" field. Integers beyond 64 bits keep their digits.
// Returns the process exit code (0).
int run_cases(std::istream& in, std::ostream& out, std::ostream& err, int threads, const VerifyOptions& base);

// Prints the registered reward functions with their arguments; returns 0.
int list_rewards(std::ostream& out);

// Prints the verdict and both extracted answers for one pair; returns 0.
int run_pair(const std::string& gold, const std::string& pred, std::ostream& out, const VerifyOptions& opt);

}  // namespace rlvr::rewards
