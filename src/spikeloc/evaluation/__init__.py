"""Evaluation: per-model results on a set and the typed metrics of a run (:mod:`.metrics`)."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "metrics": ["KindMetrics", "ModelResult", "RunMetrics", "SplitMetrics", "Summary", "bin_probabilities",
                "evaluate", "results_from_probabilities"],
})
