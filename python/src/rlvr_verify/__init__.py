"""rlvr's rule-based math answer verifier and reward rubric, from Python (C++ core, no LibTorch).

    >>> import rlvr_verify as rv
    >>> v = rv.verify("\\frac{1}{2}", "so the answer is $\\boxed{0.5}$")
    >>> v.verdict, v.pred_extracted, v.gold_extracted
    ('correct', '0.5', '\\frac{1}{2}')

`verify` checks one pair; `verify_batch` checks many on a thread pool with the GIL released; `Rubric` is the
weighted reward rubric of `rlvr train` read from the same YAML. `rlvr_verify.trl` and `rlvr_verify.verl` hold
drop-in reward functions for those trainers. Verdicts are three-way: "correct", "wrong", or "ungradable" (the
check could not be made: the gold does not parse, nothing was extracted, or a cap was reached), never an
exception and never a hang.
"""
from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from . import _core
from ._core import ConfigError, Options, RewardInfo, Score, Verdict

__all__ = [
    "ConfigError", "Options", "Verdict", "Score", "Rubric", "RewardInfo", "make_options", "verify",
    "verify_batch", "extract_answer", "extract_gold", "answers_equivalent", "options_from_peer_config",
    "list_rewards",
]

_OPTION_NAMES = tuple(n for n in dir(Options) if not n.startswith("_"))


def make_options(options: Optional[Options] = None, **kwargs: Any) -> Options:
    """An Options from a base (default: the defaults of `rlvr verify`) with keyword overrides.

    Unknown keywords raise TypeError naming the known ones.
    """
    o = Options()
    if options is not None:
        for n in _OPTION_NAMES:
            setattr(o, n, getattr(options, n))
    for k, v in kwargs.items():
        if k not in _OPTION_NAMES:
            raise TypeError(f"unknown verifier option '{k}'; known: {', '.join(_OPTION_NAMES)}")
        setattr(o, k, v)
    return o


def verify(gold: str, pred: str, options: Optional[Options] = None, **kwargs: Any) -> Verdict:
    """Checks a model completion `pred` against the reference answer `gold`.

    Keyword options (float_rounding=6, strict_extraction=False, boxed_first=True, ...) override `options`.
    Returns a Verdict with .verdict ("correct" | "wrong" | "ungradable"), .pred_extracted, .gold_extracted,
    .reason and the shortcuts .correct / .ungradable.
    """
    return _core.verify(str(gold), str(pred), make_options(options, **kwargs))


def verify_batch(golds: Sequence[str], preds: Sequence[str],
                 options: Union[None, Options, Sequence[Options]] = None, threads: int = 0,
                 **kwargs: Any) -> list:
    """verify() over pairs on `threads` native threads (0: one per core), the GIL released meanwhile.

    `options` is one Options for every pair or a list with one per pair; keywords apply to every pair.
    """
    if options is None or isinstance(options, Options):
        opts = [make_options(options, **kwargs)]
    else:
        opts = [make_options(o, **kwargs) for o in options]
    return _core.verify_batch([str(g) for g in golds], [str(p) for p in preds], opts, int(threads))


def extract_answer(completion: str, options: Optional[Options] = None, **kwargs: Any) -> Optional[str]:
    """The answer a completion commits to, or None when nothing can be extracted."""
    return _core.extract_answer(str(completion), make_options(options, **kwargs))


def extract_gold(gold: str, options: Optional[Options] = None, **kwargs: Any) -> str:
    """The reference answer as it is compared (boxed content, $..$ stripped, ...)."""
    return _core.extract_gold(str(gold), make_options(options, **kwargs))


def answers_equivalent(a: str, b: str, options: Optional[Options] = None, **kwargs: Any) -> bool:
    """Equivalence of two extracted answers (majority voting); False when either side does not parse."""
    return _core.answers_equivalent(str(a), str(b), make_options(options, **kwargs))


def options_from_peer_config(config: Union[Mapping[str, Any], str], base: Optional[Options] = None) -> Options:
    """Options matching a peer verifier's configuration (the `config` object of a `rlvr verify --cases` line:
    Math-Verify extraction configs, lighteval / AReaL / hendrycks / qwen styles)."""
    text = config if isinstance(config, str) else json.dumps(config)
    return _core.options_from_peer_config(text, base if base is not None else Options())


def list_rewards() -> list:
    """The registered reward functions (name, description, args), as `rlvr verify --list-rewards`."""
    return _core.list_rewards()


class Rubric:
    """The weighted reward rubric of `rlvr train` (math_accuracy, format, tag_count, soft_overlong, cosine,
    repetition; docs/rewards.md).

        Rubric.from_yaml("configs/quickstart_grpo.yaml")      # the `rewards:` list of an rlvr config
        Rubric.from_yaml("- {name: math_accuracy}\\n- {name: format, weight: 0.2}")
        Rubric([{"name": "math_accuracy"}, {"name": "format", "weight": 0.2, "args": {"style": "boxed"}}])

    Errors in the specification raise ConfigError (a ValueError) naming the function, key and value.
    """

    def __init__(self, specs: Iterable[Mapping[str, Any]] = ({"name": "math_accuracy"},), _core_rubric=None):
        if _core_rubric is not None:
            self._r = _core_rubric
            return
        triples = []
        for i, s in enumerate(specs):
            unknown = set(s) - {"name", "weight", "args"}
            if unknown or "name" not in s:
                raise ConfigError(f"rewards[{i}]: expected keys name, weight, args; got {sorted(s)}")
            args = {str(k): _scalar_str(v) for k, v in (s.get("args") or {}).items()}
            triples.append((str(s["name"]), float(s.get("weight", 1.0)), args))
        self._r = _core.Rubric.from_specs(triples)

    @classmethod
    def from_yaml(cls, path_or_text: Union[str, os.PathLike]) -> "Rubric":
        """From a YAML file (an rlvr config with `rewards:`, or a bare list) or from YAML text."""
        p = os.fspath(path_or_text)
        if "\n" not in p and os.path.isfile(p):
            with open(p, encoding="utf-8") as f:
                return cls(_core_rubric=_core.Rubric.from_yaml_text(f.read(), p))
        return cls(_core_rubric=_core.Rubric.from_yaml_text(p, "<yaml text>"))

    @property
    def names(self) -> list:
        return self._r.names

    @property
    def weights(self) -> list:
        return self._r.weights

    def score(self, completions: Sequence[str], references: Sequence[str],
              truncated: Optional[Sequence[bool]] = None, num_tokens: Optional[Sequence[int]] = None,
              max_tokens: int = 0, threads: int = 0) -> list:
        """One Score (total, per_function, verdict) per completion, on `threads` native threads (0: one per
        core). truncated / num_tokens / max_tokens feed the length-aware functions (soft_overlong, cosine)."""
        return self._r.score([str(c) for c in completions], [str(r) for r in references],
                             [bool(t) for t in truncated] if truncated is not None else [],
                             [int(n) for n in num_tokens] if num_tokens is not None else [],
                             int(max_tokens), int(threads))


def _scalar_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
