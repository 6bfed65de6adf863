// Multi-path votes and confidence summaries with hand-made paths and hand-computed values.
#include <catch2/catch.hpp>

#include "common/error.h"
#include "data/voting.h"

using namespace rlvr;
using namespace rlvr::data;

TEST_CASE("group confidences: full windows from prefix sums and a short trace as one group", "[data][voting]") {
  // C = 1 2 3 4 5, window 2: (1+2)/2 (2+3)/2 (3+4)/2 (4+5)/2
  std::vector<float> c = {1, 2, 3, 4, 5};
  CHECK(group_confidences(c, 2) == std::vector<double>{1.5, 2.5, 3.5, 4.5});
  CHECK(group_confidences(c, 5) == std::vector<double>{3.0});
  CHECK(group_confidences(c, 9) == std::vector<double>{3.0});  // shorter than the window: the whole mean
  CHECK(group_confidences({}, 3).empty());
  CHECK_THROWS_AS(group_confidences(c, 0), Error);
}

TEST_CASE("trace confidence: mean lowest bottom-10% and tail", "[data][voting]") {
  // 12 tokens, window 3 -> 10 groups; lowest group = (0+0+3)/3 = 1 at the start ... values below by hand.
  std::vector<float> c = {0, 0, 3, 6, 6, 6, 6, 6, 6, 6, 9, 9};
  auto t = trace_confidence(c, 3, 2);
  CHECK(t.mean == Approx(63.0 / 12));
  // groups: 1, 3, 5, 6, 6, 6, 6, 6, 7, 8 -> lowest 1; bottom 10% = ceil(1.0) = 1 group -> 1
  CHECK(t.lowest == Approx(1.0));
  CHECK(t.bottom10 == Approx(1.0));
  CHECK(t.tail == Approx(9.0));
  // 25 tokens of 5 with two dips: window 1 -> 25 groups, bottom 10% = ceil(2.5) = 3 lowest: (0 + 1 + 5) / 3
  std::vector<float> d(25, 5.0f);
  d[4] = 0;
  d[17] = 1;
  auto u = trace_confidence(d, 1, 100);
  CHECK(u.lowest == Approx(0.0));
  CHECK(u.bottom10 == Approx(2.0));
  CHECK(u.tail == Approx((23 * 5.0 + 1) / 25));  // tail longer than the trace: all tokens
  auto z = trace_confidence({}, 4, 4);
  CHECK(z.mean == 0.0);
}

namespace {
Path P(int64_t cluster, bool correct, double lowest, int64_t tokens = 10, bool finished = true) {
  Path p;
  p.cluster = cluster;
  p.correct = correct;
  p.tokens = tokens;
  p.finished = finished;
  p.conf.mean = p.conf.lowest = p.conf.bottom10 = p.conf.tail = lowest;
  return p;
}
}  // namespace

TEST_CASE("majority and confidence-weighted votes group by class and break ties by first voter", "[data][voting]") {
  // Class 0 (wrong) has 3 low-confidence votes, class 1 (right) 2 confident ones.
  std::vector<Path> ps = {P(0, false, 1.0), P(1, true, 4.0), P(0, false, 1.0), P(1, true, 4.0), P(0, false, 1.0)};
  auto maj = majority_vote(ps);
  CHECK(maj.cluster == 0);
  CHECK_FALSE(maj.correct);
  CHECK(maj.voters == 5);
  // weighted by confidence: 0 -> 3.0, 1 -> 8.0
  auto w = confidence_vote(ps, ConfMeasure::lowest, 100);
  CHECK(w.cluster == 1);
  CHECK(w.correct);
  // top 40% = 2 paths: the two confident ones
  auto f = confidence_vote(ps, ConfMeasure::lowest, 40);
  CHECK(f.cluster == 1);
  CHECK(f.voters == 2);
  // exact weighted tie 2.0 vs 2.0: the class whose first voter comes first (class 1 at index 0)
  std::vector<Path> tie = {P(1, true, 2.0), P(0, false, 1.0), P(0, false, 1.0)};
  CHECK(confidence_vote(tie, ConfMeasure::mean, 100).cluster == 1);
  // no answers: no winner
  std::vector<Path> none = {P(-1, false, 5.0), P(-1, false, 5.0)};
  auto n = confidence_vote(none, ConfMeasure::mean, 100);
  CHECK(n.cluster == -1);
  CHECK(n.voters == 0);
  // a stopped path neither votes nor takes a top-eta place
  std::vector<Path> st = {P(0, false, 9.0), P(1, true, 2.0), P(1, true, 2.0)};
  st[0].stopped = true;
  auto s = confidence_vote(st, ConfMeasure::lowest, 50);  // 50% of the 2 live paths = 1
  CHECK(s.cluster == 1);
  CHECK(s.voters == 1);
}

TEST_CASE("top-eta mask keeps ceil(eta n) and at least one with ties to the earlier index", "[data][voting]") {
  std::vector<double> s = {3, 1, 3, 2, 0, 5, 4, 4, 2, 1};
  auto k10 = top_eta_mask(s, 10);  // 1 of 10: index 5
  CHECK(k10 == std::vector<char>{0, 0, 0, 0, 0, 1, 0, 0, 0, 0});
  auto k30 = top_eta_mask(s, 30);  // 3: 5, then 6 and 7 (4, 4)
  CHECK(k30 == std::vector<char>{0, 0, 0, 0, 0, 1, 1, 1, 0, 0});
  auto k40 = top_eta_mask(s, 40);  // 4: the tie 3, 3 at the cut goes to index 0
  CHECK(k40 == std::vector<char>{1, 0, 0, 0, 0, 1, 1, 1, 0, 0});
  CHECK(top_eta_mask({7.0}, 10) == std::vector<char>{1});
  CHECK_THROWS_AS(top_eta_mask(s, 0), Error);
}

TEST_CASE("short-m@k votes among the m shortest finished paths and counts their tokens", "[data][voting]") {
  std::vector<Path> ps = {P(0, false, 1, 50), P(1, true, 1, 12), P(1, true, 1, 30), P(2, false, 1, 8, /*finished=*/false),
                          P(0, false, 1, 20)};
  // finished by length: 12 (c1), 20 (c0), 30 (c1), 50 (c0); truncated 8 excluded
  auto s1 = short_m_vote(ps, 1);
  CHECK(s1.cluster == 1);
  auto s2 = short_m_vote(ps, 2);  // 1 vs 1: the class of the shorter path (c1)
  CHECK(s2.cluster == 1);
  CHECK(s2.voters == 2);
  auto s3 = short_m_vote(ps, 3);  // c1 x2, c0 x1
  CHECK(s3.correct);
  // tokens with m = 2: L_2 = 20 -> min(50,20) + 12 + 20 + 8 + 20 = 80
  CHECK(short_m_tokens(ps, 2) == 80);
  // fewer than m finished: every token
  CHECK(short_m_tokens(ps, 5) == 50 + 12 + 30 + 8 + 20);
}

TEST_CASE("online threshold is numpy's linear percentile and the threshold vote filters by lowest", "[data][voting]") {
  // sorted 1 2 3 4 5; eta 10 -> 90th percentile: pos 0.9 * 4 = 3.6 -> 4 + 0.6 * 1 = 4.6
  std::vector<double> w = {5, 1, 4, 2, 3};
  CHECK(online_threshold(w, 10) == Approx(4.6));
  // eta 90 -> 10th percentile: pos 0.4 -> 1 + 0.4 = 1.4
  CHECK(online_threshold(w, 90) == Approx(1.4));
  CHECK(online_threshold({2.5}, 10) == Approx(2.5));
  CHECK_THROWS_AS(online_threshold({}, 10), Error);
  std::vector<Path> ps = {P(0, false, 1.0), P(0, false, 1.2), P(1, true, 2.0), P(0, false, 1.3)};
  auto below = threshold_vote(ps, 0.0);  // everyone votes, weighted: c0 3.5 vs c1 2.0
  CHECK(below.cluster == 0);
  auto cut = threshold_vote(ps, 1.25);  // keeps 2.0 (c1) and 1.3 (c0): 2.0 > 1.3
  CHECK(cut.cluster == 1);
  CHECK(cut.voters == 2);
}

TEST_CASE("aggregate names parse with their parameters and unknown ones list the menu", "[data][voting]") {
  auto a = parse_aggregates("maj, conf-lowest@10,conf-tail,short-3,online-high,maj");
  REQUIRE(a.size() == 5);
  CHECK(a[0].kind == AggregateMethod::Kind::maj);
  CHECK(a[1].kind == AggregateMethod::Kind::conf);
  CHECK(a[1].measure == ConfMeasure::lowest);
  CHECK(a[1].eta == 10);
  CHECK(a[2].measure == ConfMeasure::tail);
  CHECK(a[2].eta == 100);
  CHECK(a[3].m == 3);
  CHECK(a[4].kind == AggregateMethod::Kind::online);
  CHECK(a[4].eta == 90);
  CHECK_THROWS_AS(parse_aggregate("conf-median"), ConfigError);
  CHECK_THROWS_AS(parse_aggregate("conf-mean@0"), ConfigError);
  CHECK_THROWS_AS(parse_aggregate("short-x"), ConfigError);
  try {
    parse_aggregate("deepconf");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("online-low") != std::string::npos);
  }
}
