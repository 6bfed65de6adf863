#!/usr/bin/env python3
"""Checks of the installed rlvr_verify package.

--peer-cases F --rlvr-out G: every case of F verified from Python (one verify() per case and one
verify_batch() over all, per-case peer config) must give the verdict and both extracted answers that
`rlvr verify --cases F` wrote to G.
--api: hand-checked behaviour of verify, options, the rubric from YAML and the TRL / verl adapters.
"""
import argparse, json, sys

import rlvr_verify as rv

ap = argparse.ArgumentParser()
ap.add_argument("--peer-cases")
ap.add_argument("--rlvr-out")
ap.add_argument("--api", action="store_true")
a = ap.parse_args()


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


if a.peer_cases:
    cases = [json.loads(l) for l in open(a.peer_cases, encoding="utf-8") if l.strip()]
    ref = [json.loads(l) for l in open(a.rlvr_out, encoding="utf-8")]
    if len(cases) != len(ref):
        fail(f"{len(cases)} cases but {len(ref)} rlvr verify lines")
    opts = [rv.options_from_peer_config(c["config"]) if "config" in c else rv.Options() for c in cases]
    single = [rv.verify(c["gold"], c["pred"], o) for c, o in zip(cases, opts)]
    batch = rv.verify_batch([c["gold"] for c in cases], [c["pred"] for c in cases], opts, threads=2)
    counts = {}
    for i, (s, b, r) in enumerate(zip(single, batch, ref)):
        for name, v in (("verify", s), ("verify_batch", b)):
            got = (v.verdict, v.pred_extracted, v.gold_extracted)
            want = (r["verdict"], r["pred_extracted"], r["gold_extracted"])
            if got != want:
                fail(f"case {i} ({cases[i].get('source')}): {name} {got} != rlvr verify {want}")
        counts[s.verdict] = counts.get(s.verdict, 0) + 1
    expected = sum(1 for c, s in zip(cases, single) if "expected" in c and (s.verdict == "correct") == bool(c["expected"]))
    print(f"peer cases: {len(cases)} identical to rlvr verify ({counts}); agreement with the peers' labels "
          f"{expected}/{sum('expected' in c for c in cases)}")

if a.api:
    v = rv.verify("\\frac{1}{2}", "so the answer is $\\boxed{0.5}$")
    assert (v.verdict, v.pred_extracted, v.gold_extracted, v.correct) == ("correct", "0.5", "\\frac{1}{2}", True), v
    w = rv.verify("3", "The answer is 4.")
    assert w.verdict == "wrong" and w.pred_extracted == "4" and not w.correct, w
    u = rv.verify("\\frac{", "\\boxed{1}")
    assert u.verdict == "ungradable" and u.ungradable and u.reason, u
    # float_rounding: 3.14159 vs pi equal at 2 places, not at 6 (Math-Verify's rounding rule)
    assert rv.verify("3.14159", "\\boxed{3.1416}", float_rounding=3).verdict == "correct"
    assert rv.verify("3.14159", "\\boxed{3.1416}").verdict == "wrong"
    # strict extraction: no last-number fallback
    assert rv.verify("7", "I think 7").verdict == "correct"
    assert rv.verify("7", "I think 7", strict_extraction=True, expr=False).verdict != "correct"
    try:
        rv.verify("1", "1", float_rouding=2)
        fail("an unknown option was accepted")
    except TypeError as e:
        assert "float_rounding" in str(e), e
    assert rv.extract_answer("the answer is \\boxed{42}") == "42"
    assert rv.extract_answer("no digits here", strict_extraction=True, expr=False) is None
    assert rv.answers_equivalent("0.5", "\\frac12")
    b = rv.verify_batch(["4", "4", "x"], ["\\boxed{4}", "\\boxed{5}", "\\boxed{x}"], threads=3)
    assert [x.verdict for x in b] == ["correct", "wrong", "correct"], b
    try:
        rv.verify_batch(["1"], ["1", "2"])
        fail("mismatched batch accepted")
    except ValueError as e:
        assert "1 golds but 2 preds" in str(e), e

    # Rubric from the same YAML as rlvr train: 1.0 * accuracy + 0.5 * format(boxed)
    r = rv.Rubric.from_yaml("rewards:\n  - {name: math_accuracy}\n  - {name: format, weight: 0.5, args: {style: boxed}}\n")
    assert r.names == ["math_accuracy", "format"] and r.weights == [1.0, 0.5]
    s = r.score(["\\boxed{4}", "4", "\\boxed{5}"], ["4", "4", "4"], threads=2)
    assert [x.total for x in s] == [1.5, 1.0, 0.5], s
    assert s[0].per_function == [1.0, 1.0] and s[2].verdict == "wrong"
    try:
        rv.Rubric([{"name": "math_acuracy"}])
        fail("unknown reward accepted")
    except rv.ConfigError as e:
        assert "math_accuracy" in str(e), e
    try:
        rv.Rubric.from_yaml("rewards:\n  - {name: format, args: {style: boxd}}\n")
        fail("bad arg accepted")
    except ValueError as e:
        assert "boxd" in str(e), e
    assert "math_accuracy" in [x.name for x in rv.list_rewards()]

    # TRL: standard and conversational completions, reference from `solution` or `answer`
    from rlvr_verify.trl import accuracy_reward, make_accuracy_reward, make_rubric_reward
    got = accuracy_reward(prompts=["p"] * 3, completions=["\\boxed{4}", "\\boxed{5}", "\\boxed{\\frac{}"],
                          solution=["4", "4", "\\frac{"])
    assert got == [1.0, 0.0, None], got
    conv = [[{"role": "assistant", "content": "so \\boxed{12}"}], [{"role": "assistant", "content": "13"}]]
    assert accuracy_reward(prompts=[[], []], completions=conv, answer=["12", "12"]) == [1.0, 0.0]
    f = make_accuracy_reward(answer_column="gt", wrong=-1.0, ungradable=0.0)
    assert f(prompts=["p"], completions=["\\boxed{2}"], gt=["3"]) == [-1.0]
    try:
        accuracy_reward(prompts=["p"], completions=["1"], label=["1"])
        fail("missing answer column accepted")
    except KeyError as e:
        assert "label" in str(e) and "answer_column" in str(e), e
    rr = make_rubric_reward("- {name: math_accuracy}\n- {name: format, weight: 0.5, args: {style: boxed}}\n")
    assert rr(prompts=["p", "p"], completions=["\\boxed{4}", "4"], solution=["4", "4"]) == [1.5, 1.0]
    assert rr.__name__ == "rlvr_rubric" and accuracy_reward.__name__ == "rlvr_accuracy"

    # verl: compute_score by file path, as verl loads custom reward functions
    import importlib.util, rlvr_verify.verl as vmod
    spec = importlib.util.spec_from_file_location("custom_module", vmod.__file__)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    assert m.compute_score("openai/gsm8k", "... #### 72", "72", {}) == 1.0
    assert m.compute_score("lighteval/MATH", "\\boxed{\\dfrac{3}{4}}", "\\frac34", None) == 1.0
    assert m.compute_score("lighteval/MATH", "\\boxed{0.7}", "\\frac34") == 0.0
    assert m.compute_score_batch(["a", "b"], ["\\boxed{1}", "\\boxed{2}"], ["1", "1"], [{}, {}]) == [1.0, 0.0]
    print("api: ok")
