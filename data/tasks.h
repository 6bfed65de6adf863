// Built-in synthetic verifiable tasks (arithmetic, countdown): seeded, with difficulty levels, reference
// answers and short worked solutions (SFT targets) ending in \boxed{...}. Train and held-out splits come
// from disjoint seed streams AND a fixed partition of the problem space (a hash of the canonical problem
// decides its split), so no held-out problem can ever appear in any train set, whatever the sizes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/countdown.h"
#include "data/dataset.h"

namespace rlvr::data {

enum class Split { train, held_out };
const char* to_string(Split s);               // "train" | "held_out"
Split parse_split(const std::string& name);   // train | held_out (also eval, test); ConfigError otherwise

const std::vector<std::string>& task_names();  // arithmetic, countdown
constexpr int kMaxTaskDifficulty = 6;

// Generates `count` problems of task `name` at `difficulty` (1..kMaxTaskDifficulty) for `split`.
// Deterministic in (name, difficulty, seed, split); a smaller count gives a prefix of a larger one.
// Problems are distinct within a call while the problem space allows (after 64 draws that all repeat,
// a repeat is accepted). Unknown names are ConfigErrors listing the known ones.
//
// arithmetic: prompt "Compute 12+7-3.", reference "16", solution "12+7=19, 19-3=16. \boxed{16}".
//   Products first, then left to right. Levels: 1: a±b, operands 1..99; 2: three operands; 3: three,
//   with * by 2..9; 4: four operands, * by 2..19; 5: five operands 1..999, * by 2..99; 6: six.
// countdown: prompt "Make 29 from 3 7 8 using + - * /, each at most once.", reference "29",
//   solution "8-3=5, 5*7=35, 35-6=29. \boxed{(8-3)*7-6}" (a boxed expression, graded by
//   check_countdown, not by value equality), extra {"numbers": [3, 7, 8], "target": 29}. Levels:
//   1: 3 numbers 1..10; 2: 3 numbers 1..25; 3: 4 numbers 1..25; 4: 4 numbers 1..100; 5: 5 numbers
//   1..100; 6: 6 numbers 1..100. Targets 1..100 (levels 1-3) or 1..1000, never one of the numbers,
//   always reachable (the reference solution comes from solve_countdown and uses the fewest numbers);
//   the shortest solution needs at least 1 (level 1), 2 (levels 2-4) or 3 (levels 5-6) operations.
// Every record's extra holds {"task", "difficulty", "split"}; ids are "<task>-d<difficulty>-<split>-<i>".
Dataset generate_task(const std::string& name, int difficulty, int64_t count, uint64_t seed, Split split);

// Grades an answer to a countdown record (its extra holds numbers and target); Error if the record is
// not a countdown record.
CountdownVerdict check_countdown_record(std::string_view answer, const Record& record);

// "builtin:<task>" -> "<task>"; "" for anything else (a file path).
std::string builtin_task_name(const std::string& source);

}  // namespace rlvr::data
