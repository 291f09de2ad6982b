"""Figures for people: the plots (:mod:`.plots`), a run's figures (:mod:`.figures`), its HTML report
(:mod:`.report`) and its results as text (:mod:`.text`)."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submodules=["plots"], submod_attrs={
    "figures": ["analysis_figures", "draw", "run_figures"],
    "report": ["render", "write_report"],
    "sweep_report": ["write_sweep_report"],
    "text": ["analysis_summary", "bound_summary", "metrics_table"],
})
