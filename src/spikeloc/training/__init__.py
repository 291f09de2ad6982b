"""Training: :func:`.loop.fit` runs Adam on a model's own loss, in stages, and returns the history."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "loop": ["Epoch", "FitState", "Stage", "batches", "fit", "stages"],
})
