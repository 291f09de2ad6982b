"""Runs: the whole pipeline from a config (:mod:`.pipeline`), a run in memory (:mod:`.run`) and its folder on
disk (:mod:`.folder`)."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "run": ["Run", "resolve_device"],
    "pipeline": ["datasets", "evaluate_fresh", "evaluate_run", "evaluate_splits", "evaluation_config",
                 "member_datasets", "member_seeds", "test_set",
                 "stage_generator", "train", "validation_sets"],
    "folder": ["AlreadyComplete", "RunFolder", "load_run", "read_status", "save", "write_metrics"],
    "files": ["remove_temporaries", "write_atomic"],
    "resources": ["auto_threads", "check_memory", "check_samples", "memory_estimate", "resolve_threads",
                  "using_threads"],
    "lock": ["FolderLock", "locked"],
    "robustness": ["robustness_curves"],
})
