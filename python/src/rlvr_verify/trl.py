"""Reward functions for TRL's GRPOTrainer: `GRPOTrainer(..., reward_funcs=[rlvr_verify.trl.accuracy_reward])`.

TRL calls a reward function as f(prompts=..., completions=..., **columns) where every extra dataset column
arrives as a keyword list; the reference answer is read from the first of `solution`, `answer`,
`ground_truth`, `reference` present (or the column you name). Completions may be strings (standard format)
or message lists (conversational format: the last message's content is graded). An ungradable completion
scores None by default, which TRL treats as "no reward from this function" rather than as a wrong answer.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

import rlvr_verify as _rv

ANSWER_COLUMNS = ("solution", "answer", "ground_truth", "reference")


def _text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (list, tuple)) and completion:  # conversational: [{"role", "content"}, ...]
        content = completion[-1].get("content", "") if isinstance(completion[-1], dict) else completion[-1]
        if isinstance(content, list):  # content parts [{"type": "text", "text": ...}]
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)
    return str(completion)


def _references(kwargs: dict, column: Optional[str], n: int) -> List[str]:
    names = (column,) if column else ANSWER_COLUMNS
    for name in names:
        if name in kwargs and kwargs[name] is not None:
            refs = kwargs[name]
            if len(refs) != n:
                raise ValueError(f"rlvr_verify: column '{name}' has {len(refs)} entries for {n} completions")
            return ["" if r is None else str(r) for r in refs]
    raise KeyError(f"rlvr_verify: no reference answer column; looked for {list(names)}, dataset columns are "
                   f"{sorted(k for k in kwargs if k not in ('prompts', 'completions'))}. HINT: "
                   f"make_accuracy_reward(answer_column='<your column>')")


def make_accuracy_reward(answer_column: Optional[str] = None, correct: float = 1.0, wrong: float = 0.0,
                         ungradable: Optional[float] = None, threads: int = 0,
                         options: Optional[_rv.Options] = None, **option_kwargs: Any) -> Callable:
    """A TRL reward function: `correct` / `wrong` / `ungradable` per completion from the verifier.

    Verifier keyword options (float_rounding, strict_extraction, boxed_first, ...) apply to every check;
    the batch runs on `threads` native threads (0: one per core) with the GIL released.
    """
    opts = _rv.make_options(options, **option_kwargs)

    def rlvr_accuracy(prompts: Sequence[Any] = None, completions: Sequence[Any] = None,
                      **kwargs: Any) -> List[Optional[float]]:
        texts = [_text(c) for c in completions]
        refs = _references(kwargs, answer_column, len(texts))
        out: List[Optional[float]] = []
        for v in _rv.verify_batch(refs, texts, opts, threads=threads):
            out.append(correct if v.verdict == "correct" else wrong if v.verdict == "wrong" else ungradable)
        return out

    return rlvr_accuracy


def make_rubric_reward(rubric: "_rv.Rubric | str", answer_column: Optional[str] = None, max_tokens: int = 0,
                       threads: int = 0) -> Callable:
    """A TRL reward function returning the rubric's weighted total (rubric: a Rubric, or YAML path/text).

    Completion lengths for soft_overlong / cosine come from TRL's `completion_ids` keyword when present;
    `max_tokens` should then be GRPOConfig.max_completion_length.
    """
    r = rubric if isinstance(rubric, _rv.Rubric) else _rv.Rubric.from_yaml(rubric)

    def rlvr_rubric(prompts: Sequence[Any] = None, completions: Sequence[Any] = None,
                    **kwargs: Any) -> List[float]:
        texts = [_text(c) for c in completions]
        refs = _references(kwargs, answer_column, len(texts))
        ids = kwargs.get("completion_ids")
        num_tokens = [len(x) for x in ids] if ids is not None and len(ids) == len(texts) else None
        truncated = [n >= max_tokens for n in num_tokens] if num_tokens is not None and max_tokens > 0 else None
        return [s.total for s in r.score(texts, refs, truncated=truncated, num_tokens=num_tokens,
                                         max_tokens=max_tokens, threads=threads)]

    return rlvr_rubric


# The default: 1.0 correct, 0.0 wrong, None ungradable; reference from solution / answer / ground_truth.
accuracy_reward = make_accuracy_reward()
