"""The Bayesian ideal observer (:mod:`.ideal`: the bound any network is measured against) and its
evidence from one time step (:mod:`.step`: the training target of ``train.target = "observer"``)."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "ideal": ["IdealObserver", "bound", "observer_metrics"],
    "step": ["StepObserver"],
})
