// Prompt selection before generation: the per-prompt history, the keep probabilities of each policy (derived
// by hand), the stated skip rate, skipped prompts coming back, the scan limit, and identical decisions on every
// rank and after a resume.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include "common/error.h"
#include "data/selection.h"

using namespace rlvr;
using namespace rlvr::data;

namespace {
// A history in which every prompt in [0, n) had `streak` groups in a row that were all wrong (0 of 8).
PromptHistory all_wrong(int64_t n, int streak, int32_t window = 4) {
  PromptHistory h(window);
  for (int s = 1; s <= streak; ++s)
    for (int64_t p = 0; p < n; ++p) h.record({p, 0, 8, s});
  return h;
}
SelectionOptions opts(SelectionPolicy p, double explore, int32_t max_scan = 4) {
  SelectionOptions o;
  o.policy = p;
  o.explore = explore;
  o.max_scan = max_scan;
  return o;
}
}  // namespace

TEST_CASE("prompt history: attempts, streak of zero-variance groups, window of pass rates, last step", "[data][selection]") {
  PromptHistory h(3);
  CHECK(h.find(5) == nullptr);
  CHECK(std::isnan(h.pass_rate(5)));
  h.record({5, 8, 8, 1});  // all correct
  h.record({5, 0, 8, 2});  // all wrong
  REQUIRE(h.find(5) != nullptr);
  CHECK(h.find(5)->zero_streak == 2);
  h.record({5, 3, 8, 4});  // mixed: the streak ends
  CHECK(h.find(5)->zero_streak == 0);
  h.record({5, 4, 8, 6});
  const auto* r = h.find(5);
  CHECK(r->attempts == 4);
  CHECK(r->samples == 32);
  CHECK(r->correct == 15);
  CHECK(r->last_step == 6);
  // The window keeps the last 3 groups: 0/8, 3/8, 4/8 -> (0 + 0.375 + 0.5) / 3.
  CHECK(r->recent == std::vector<float>{0.0f, 0.375f, 0.5f});
  CHECK(h.pass_rate(5) == Approx(0.875 / 3));
  CHECK_THROWS_AS(h.record({1, 9, 8, 1}), Error);
}

TEST_CASE("prompt history: JSON round trip, and a bad entry is named", "[data][selection]") {
  PromptHistory h(2);
  h.record({3, 2, 4, 1});
  h.record({0, 4, 4, 1});
  h.record({3, 0, 4, 2});
  h.record({3, 4, 4, 3});
  auto j = h.to_json();
  CHECK(j["prompts"][0][0] == 0);  // sorted by index
  CHECK(PromptHistory::from_json(j) == h);
  CHECK(PromptHistory::from_json(nlohmann::json::parse(j.dump())) == h);
  auto bad = j;
  bad["prompts"][1][3] = 99;  // more correct than samples
  CHECK_THROWS_WITH(PromptHistory::from_json(bad), Catch::Contains("entry 1"));
  bad = j;
  bad["prompts"][0] = "x";
  CHECK_THROWS_WITH(PromptHistory::from_json(bad), Catch::Contains("entry 0"));
  CHECK_THROWS_AS(PromptHistory::from_json(nlohmann::json::object()), Error);
}

TEST_CASE("keep probabilities: explore^streak for skip_zero_variance, explore outside the band", "[data][selection]") {
  PromptHistory h(4);
  h.record({0, 8, 8, 1});
  h.record({0, 8, 8, 2});  // two all-correct groups
  h.record({1, 0, 8, 1});  // one all-wrong group
  h.record({2, 4, 8, 1});  // mixed
  auto szv = opts(SelectionPolicy::skip_zero_variance, 0.5);
  CHECK(keep_probability(h.find(0), szv) == 0.25);
  CHECK(keep_probability(h.find(1), szv) == 0.5);
  CHECK(keep_probability(h.find(2), szv) == 1.0);
  CHECK(keep_probability(nullptr, szv) == 1.0);  // unseen
  auto band = opts(SelectionPolicy::pass_rate_band, 0.2);
  band.band_lo = 0.1;
  band.band_hi = 0.9;
  CHECK(keep_probability(h.find(0), band) == 0.2);  // pass rate 1
  CHECK(keep_probability(h.find(1), band) == 0.2);  // pass rate 0
  CHECK(keep_probability(h.find(2), band) == 1.0);  // 0.5
  CHECK(keep_probability(h.find(0), opts(SelectionPolicy::all, 0.0)) == 1.0);
  CHECK(parse_selection_policy("pass_rate_band") == SelectionPolicy::pass_rate_band);
  CHECK(selection_policy_name(SelectionPolicy::skip_zero_variance) == "skip_zero_variance");
  CHECK_THROWS_WITH(parse_selection_policy("greso"), Catch::Contains("data.selection"));
}

TEST_CASE("selection: 'all' is the plain data stream", "[data][selection]") {
  PromptSampler a(50, 3), b(50, 3);
  auto h = all_wrong(50, 2);
  for (int step = 1; step <= 7; ++step) {
    auto s = select_global_batch(a, h, opts(SelectionPolicy::all, 0.0), 16, 3, step, 0);
    CHECK(s.prompts == b.next_global_batch(16));
    CHECK(s.candidates == 16);
    CHECK(s.skipped == 0);
    CHECK(a.cursor() == b.cursor());
  }
}

TEST_CASE("selection: a zero-variance prompt is skipped with the stated probability", "[data][selection]") {
  // Every prompt has a streak of 1 (kept with probability explore = 0.3) or 2 (0.09). A batch of 600 keeps
  // candidates until 600 are kept: kept / examined estimates the keep probability. Binomial sd of the kept
  // fraction over ~2000 candidates is sqrt(0.3 * 0.7 / 2000) = 0.010; the tolerance is 4 sd.
  for (int streak : {1, 2}) {
    const double p = std::pow(0.3, streak);
    PromptSampler s(100000, 9);
    auto h = all_wrong(100000, streak);
    auto sel = select_global_batch(s, h, opts(SelectionPolicy::skip_zero_variance, 0.3, 1000), 600, 9, 1, 0);
    CHECK(sel.prompts.size() == 600);
    CHECK(sel.forced == 0);
    CHECK(sel.candidates == sel.skipped + 600);
    CHECK(s.cursor().offset == sel.candidates);  // the stream advanced by what was examined
    const double kept = 600.0 / static_cast<double>(sel.candidates);
    const double sd = std::sqrt(p * (1 - p) / static_cast<double>(sel.candidates));
    INFO("streak " << streak << ": kept " << kept << " of candidates, expected " << p);
    CHECK(std::abs(kept - p) < 4 * sd);
  }
  // The draws themselves are uniform: the fraction below 0.25 over 40000 draws is 0.25 within 4 sd (0.0087).
  int below = 0;
  for (int i = 0; i < 40000; ++i) below += selection_draw(5, 1, 0, i, i % 97) < 0.25;
  CHECK(std::abs(below / 40000.0 - 0.25) < 0.0087);
}

TEST_CASE("selection: skipped prompts come back, and a mixed group ends the skipping", "[data][selection]") {
  // 5 prompts, all with a streak of 3 (kept with probability 0.125): over 200 steps of one prompt each, every prompt
  // is kept again by its draw (not only as a fill-in): a step keeps one by draw with probability 1 - 0.875^8 = 0.66,
  // so ~130 draw-kept prompts, and the chance that a given prompt is never among them is ~0.8^130 < 1e-12.
  PromptSampler s(5, 1);
  auto h = all_wrong(5, 3);
  auto o = opts(SelectionPolicy::skip_zero_variance, 0.5, 8);
  std::map<int64_t, int> chosen;
  int64_t skipped = 0;
  for (int step = 1; step <= 200; ++step) {
    auto sel = select_global_batch(s, h, o, 1, 1, step, 0);
    if (sel.forced == 0) ++chosen[sel.prompts.front()];
    skipped += sel.skipped;
  }
  CHECK(chosen.size() == 5);
  CHECK(skipped > 400);  // most examinations were skipped (~4.6 per step expected)
  // Prompt 2 gets a mixed group: from then on it is always kept.
  h.record({2, 3, 8, 61});
  CHECK(keep_probability(h.find(2), o) == 1.0);
  PromptSampler only(5, 1, /*shuffle=*/false);
  only.set_cursor({0, 2});
  auto sel = select_global_batch(only, h, opts(SelectionPolicy::skip_zero_variance, 0.0), 1, 1, 62, 0);
  CHECK(sel.prompts == std::vector<int64_t>{2});
  CHECK(sel.candidates == 1);
}

TEST_CASE("selection: past the scan limit the batch is completed with the earliest skipped candidates", "[data][selection]") {
  // explore 0: seen zero-variance prompts are never kept by the draw. Prompts 0-9 are seen, 10-19 unseen; no shuffle.
  PromptSampler s(20, 1, /*shuffle=*/false);
  auto h = all_wrong(10, 1);
  auto sel = select_global_batch(s, h, opts(SelectionPolicy::skip_zero_variance, 0.0, 2), 4, 1, 1, 0);
  // 8 candidates (0-7) examined, none kept: the 4 earliest come back.
  CHECK(sel.prompts == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(sel.candidates == 8);
  CHECK(sel.forced == 4);
  CHECK(sel.skipped == 4);
  // Next: 8, 9 skipped, 10-13 unseen and kept.
  sel = select_global_batch(s, h, opts(SelectionPolicy::skip_zero_variance, 0.0, 2), 4, 1, 2, 0);
  CHECK(sel.prompts == std::vector<int64_t>{10, 11, 12, 13});
  CHECK(sel.candidates == 6);
  CHECK(sel.skipped == 2);
  CHECK(sel.forced == 0);
  CHECK(s.cursor() == Cursor{0, 14});
}

TEST_CASE("selection: the same decisions on every rank and after a resume", "[data][selection]") {
  // Ranks hold identical samplers and histories: each computes the same global batch and takes its slice; the
  // slices of 3 ranks put together are the one-process batch. A resumed run (cursor and history restored
  // from JSON) continues with the batches the uninterrupted run drew.
  auto o = opts(SelectionPolicy::pass_rate_band, 0.3);
  PromptHistory h(4);
  for (int64_t p = 0; p < 200; ++p) h.record({p, static_cast<int32_t>(p % 9), 8, 1});  // pass rates 0..1
  PromptSampler one(400, 5);
  std::vector<PromptSampler> ranks(3, PromptSampler(400, 5));
  std::vector<std::vector<int64_t>> uninterrupted;
  for (int step = 1; step <= 6; ++step) {
    auto g = select_global_batch(one, h, o, 10, 5, step, 0).prompts;
    uninterrupted.push_back(g);
    std::vector<int64_t> joined;
    for (int r = 0; r < 3; ++r) {
      auto mine = select_global_batch(ranks[r], h, o, 10, 5, step, 0).prompts;
      auto [b, e] = rank_slice(static_cast<int64_t>(mine.size()), r, 3);
      joined.insert(joined.end(), mine.begin() + b, mine.begin() + e);
    }
    CHECK(joined == g);
  }
  // Resume after step 3: a fresh sampler at step 3's cursor, the history read back.
  PromptSampler again(400, 5);
  for (int step = 1; step <= 3; ++step) select_global_batch(again, h, o, 10, 5, step, 0);
  PromptSampler resumed(400, 5);
  resumed.set_cursor(cursor_from_json(cursor_to_json(again.cursor())));
  auto h2 = PromptHistory::from_json(nlohmann::json::parse(h.to_json().dump()));
  for (int step = 4; step <= 6; ++step) CHECK(select_global_batch(resumed, h2, o, 10, 5, step, 0).prompts == uninterrupted[step - 1]);
  // The selection moved something: band-outside prompts (pass rate 0 or 1) were skipped.
  int64_t skipped = 0;
  PromptSampler count(400, 5);
  for (int step = 1; step <= 6; ++step) skipped += select_global_batch(count, h, o, 10, 5, step, 0).skipped;
  CHECK(skipped > 0);
}
