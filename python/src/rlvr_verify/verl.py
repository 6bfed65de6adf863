"""verl custom reward function: `custom_reward_function.path=<this file> custom_reward_function.name=compute_score`
(print the path with `python -c "import rlvr_verify.verl as m; print(m.__file__)"`).

verl loads this file by path, so it imports the package absolutely. compute_score returns 1.0 for a correct
answer and 0.0 otherwise; the verifier never raises and never hangs, so no reward is silently zeroed by a
timeout. With `reward_model.reward_manager=batch`, use name=compute_score_batch (one native thread pool per
batch).
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

import rlvr_verify as _rv


def _gold(ground_truth: Any) -> str:
    if isinstance(ground_truth, (list, tuple)):  # some datasets store a list of acceptable answers
        return str(ground_truth[0]) if ground_truth else ""
    return "" if ground_truth is None else str(ground_truth)


def compute_score(data_source: Any, solution_str: str, ground_truth: Any, extra_info: Optional[dict] = None,
                  **kwargs: Any) -> float:
    """1.0 when `solution_str` reaches `ground_truth` (rlvr's verifier), else 0.0. Keyword arguments are
    verifier options (float_rounding=..., strict_extraction=...)."""
    return 1.0 if _rv.verify(_gold(ground_truth), solution_str, **kwargs).verdict == "correct" else 0.0


def compute_score_batch(data_sources: Sequence[Any], solution_strs: Sequence[str], ground_truths: Sequence[Any],
                        extra_infos: Optional[Sequence[Any]] = None, threads: int = 0, **kwargs: Any) -> List[float]:
    """compute_score over a batch on native threads (verl's BatchRewardManager signature)."""
    vs = _rv.verify_batch([_gold(g) for g in ground_truths], list(solution_strs), threads=threads, **kwargs)
    return [1.0 if v.verdict == "correct" else 0.0 for v in vs]
