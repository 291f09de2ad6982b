"""Neuron dynamics, the reference implementations: one module per neuron, each a Params record, a State
record, a pure step function and a sequence runner, with the equations in the module's docstring."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "surrogate": ["spike_fn"],
    "lif": ["LIFParams", "LIFState", "lif_sequence", "lif_step"],
    "alif": ["ALIFParams", "ALIFState", "alif_sequence", "alif_step"],
    "li": ["LIParams", "LIState", "li_sequence", "li_step"],
})
