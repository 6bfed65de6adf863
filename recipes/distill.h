// Rejection-sampling distillation (`rlvr distill`): a teacher generates k completions per problem, the
// verifier keeps the correct ones, and the kept (prompt, completion) pairs become an SFT dataset that
// `rlvr sft` trains on (fields id, problem, answer, solution = the verified completion).
#pragma once
#include <string>

#include "data/dataset.h"
#include "trainer/evaluate.h"

namespace rlvr::recipes {

struct DistillOptions {
  trainer::EvalOptions gen;        // samples = k, sampling settings, seed
  int32_t max_per_problem = 1;     // verified completions kept per problem (distinct texts); 0 = all
};

struct DistillReport {
  int64_t problems = 0, generated = 0, correct = 0, kept = 0, problems_with_one = 0;
};

// Writes the kept pairs to `out_path` (JSONL, atomically) and returns the counts.
DistillReport distill(const trainer::Policy& teacher, const data::Dataset& problems, const DataConfig& data_cfg,
                      const DistillOptions& opts, const std::string& out_path);

}  // namespace rlvr::recipes
