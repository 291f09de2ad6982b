"""Sweeps: many runs from one command (:mod:`.driver`), over a grid of config values and seeds
(:mod:`.spec`), recorded in SQLite (:mod:`.store`), run in a local process pool or on Ray
(:mod:`.executors`), summarised with confidence intervals (:mod:`.summary`)."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "spec": ["SweepSpec", "plan", "read_spec", "spec_from_dict", "spec_from_flags"],
    "store": ["Store"],
    "driver": ["Resources", "run_sweep", "sweep_status"],
    "summary": ["summarise", "text_table", "to_csv"],
})
