// Multi-path answer aggregation for evaluation: per-trace confidence summaries from the model's own token
// confidences (DeepConf, Fu et al. 2025, arXiv 2508.15260), confidence-weighted majority voting with top-eta
// filtering, short-m@k (Hassid et al. 2025, arXiv 2505.17813) and the threshold of the online (early-stopping)
// variant. Pure functions over graded paths: grading and answer equivalence live in rewards/, the generation
// (and the early stop itself) in rollout/; this file only counts and votes.
//
// Token confidence (computed by the rollout engine): C_t = -(1/k) sum_{j=1..k} log p_t(j) over the k most likely
// tokens at position t (k = 20 by default, as DeepConf's vLLM setting). Higher = more peaked = more confident.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rlvr::data {

// Group confidences of one trace: the means of every FULL window of `window` consecutive token confidences
// (t - window + 1 .. t, for t = window - 1 .. n - 1), computed as differences of fp64 prefix sums; a trace
// shorter than the window has one group, the mean of all its tokens; an empty trace has none.
std::vector<double> group_confidences(const std::vector<float>& token_conf, int64_t window);

// The fp64 prefix sums the group means are differences of: out[i] = sum of token_conf[0 .. i-1] (size n + 1).
// The online stop check uses the same sums, so that it and the offline filter compare identical numbers.
std::vector<double> confidence_prefix_sums(const std::vector<float>& token_conf);

struct TraceConfidence {
  double mean = 0;      // average trace confidence: mean_t C_t
  double lowest = 0;    // lowest group confidence: min of group_confidences(window)
  double bottom10 = 0;  // bottom-10% group confidence: mean of the lowest ceil(10%) of the groups (at least one)
  double tail = 0;      // tail confidence: mean of the last `tail` tokens (all when shorter)
};
// All four summaries; an empty trace gives zeros. window, tail >= 1.
TraceConfidence trace_confidence(const std::vector<float>& token_conf, int64_t window, int64_t tail);

// Which summary a confidence vote ranks and weights by.
enum class ConfMeasure { mean, lowest, bottom10, tail };
const char* to_string(ConfMeasure m);
double measure(const TraceConfidence& c, ConfMeasure m);

// One sampled completion as the vote sees it.
struct Path {
  int64_t cluster = -1;     // answer-equivalence class within its problem (verifier equivalence); -1 = no answer
  bool correct = false;     // the verifier's verdict on this path's answer
  int64_t tokens = 0;       // generated tokens
  bool finished = true;     // ended by EOS or a stop string (not truncated, not stopped early)
  bool stopped = false;     // stopped early by the online method: it never votes
  TraceConfidence conf;
};

struct VoteResult {
  int64_t cluster = -1;     // the winning class; -1 when no kept path had an answer
  bool correct = false;     // the verdict of the winning class (of its first kept member)
  int64_t voters = 0;       // paths that voted (kept, not stopped, with an answer)
};

// Weighted majority over the kept paths (keep[i] != 0, not stopped, cluster >= 0): each adds weights[i] to its
// class; the largest total wins; an exact tie goes to the class whose first voter comes first.
VoteResult weighted_vote(const std::vector<Path>& paths, const std::vector<double>& weights,
                         const std::vector<char>& keep);

// Keeps the ceil(eta / 100 * n) highest scores (at least one; n = scores.size()); ties at the cut go to the
// earlier index. eta in (0, 100].
std::vector<char> top_eta_mask(const std::vector<double>& scores, double eta);

// Plain majority (maj@k) over the non-stopped paths.
VoteResult majority_vote(const std::vector<Path>& paths);
// DeepConf offline: keep the top eta% of the non-stopped paths by `m`, then vote weighted by `m`.
VoteResult confidence_vote(const std::vector<Path>& paths, ConfMeasure m, double eta);
// short-m@k: majority among the m shortest FINISHED paths (ties in length by index; a tie in votes goes to the
// class of the shorter path). No finished path: no answer.
VoteResult short_m_vote(const std::vector<Path>& paths, int64_t m);
// Tokens an online short-m@k would generate for these paths: all k run side by side and stop once m have
// finished, so path i costs min(tokens_i, L_m), L_m the m-th smallest finished length (all tokens when fewer
// than m finish).
int64_t short_m_tokens(const std::vector<Path>& paths, int64_t m);

// DeepConf online threshold: the (100 - eta)-th percentile (linear interpolation between order statistics, numpy's
// default) of the warm-up paths' lowest group confidences. eta = 10 (DeepConf-low) keeps the most confident tenth;
// eta = 90 (DeepConf-high) drops the least confident tenth.
double online_threshold(const std::vector<double>& warmup_lowest, double eta);
// The vote of the online method over its paths: paths with conf.lowest >= threshold that were not stopped, weighted
// by conf.lowest. Applied to the SAME paths generated without early stopping, it gives the same answer: a path is
// stopped online exactly when one of its full windows falls below the threshold, which is when its lowest group
// confidence does.
VoteResult threshold_vote(const std::vector<Path>& paths, double threshold);

// A --aggregate method, parsed from its name (the menu is in the error message):
//   maj                 plain majority (maj@k)
//   conf-<m>[@eta]      DeepConf offline, m in mean | lowest | bottom10 | tail, eta in (0, 100] (default 100:
//                       weighting only), e.g. conf-lowest@10
//   short-<m>           short-m@k, e.g. short-3
//   online-low, online-high   DeepConf online with early stopping at eta 10 / 90 (lowest group confidence)
struct AggregateMethod {
  enum class Kind { maj, conf, short_m, online };
  Kind kind = Kind::maj;
  ConfMeasure measure = ConfMeasure::lowest;
  double eta = 100;
  int64_t m = 0;
  std::string name;
};
AggregateMethod parse_aggregate(const std::string& name);  // ConfigError on an unknown name
std::vector<AggregateMethod> parse_aggregates(const std::string& comma_list);

}  // namespace rlvr::data
