"""Runs: the whole pipeline from a config (:mod:`.pipeline`), a run in memory (:mod:`.run`) and its folder on
disk (:mod:`.folder`)."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "run": ["Run", "resolve_device"],
    "pipeline": ["datasets", "evaluate_fresh", "evaluate_splits", "stage_generator", "train"],
    "folder": ["check_out_dir", "load_run", "save", "write_atomic"],
})
