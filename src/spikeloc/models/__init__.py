"""The models: stacks of K independent networks (:mod:`.network`, :mod:`.membrane`) that follow the
:class:`~.protocol.Model` protocol, their readouts, initialisations and losses."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "protocol": ["Model", "Output"],
    "network": ["SpikingNetwork"],
    "membrane": ["MembraneModel"],
    "registry": ["MODEL_KINDS", "build_models", "construct", "model_class"],
})
