// One reward function of the rubric as written in YAML (`rewards:` is a list of these).
#pragma once
#include <string>

#include "common/config_io.h"

namespace rlvr {

struct RewardSpec {
  std::string name;                      // registered name (see `rlvr verify --list-rewards`)
  double weight = 1.0;                   // weight in the total; 0 keeps it in the breakdown only
  StringMap args;                        // function arguments, by name (scalars as strings)
  template <class V> void visit(V& v) {
    v.field("name", name, "registered reward function");
    v.field("weight", weight, "weight in the total reward");
    v.field("args", args, "arguments of the function");
  }
};

}  // namespace rlvr
