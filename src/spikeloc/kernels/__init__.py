"""Fast paths of the neurons, each tested against its reference; :mod:`.dispatch` picks one per call."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "dispatch": ["check_engine", "fused_backend", "li", "li_mean", "lif", "uses_fused"],
})
