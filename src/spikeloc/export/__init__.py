"""Out of spikeloc: a trained model as a NIR graph (:mod:`.nir`), the format neuromorphic toolchains read."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "nir": ["from_nir", "hidden_spike_agreement", "to_nir", "write"],
})
