"""What a trained network learned: hidden-unit rates, IPD tuning and ablation (:mod:`.study`,
:mod:`.units`), written into ``RUN/analysis/`` and shown in the report."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "study": ["Analysis", "analyse", "read", "write"],
})
