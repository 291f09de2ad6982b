"""spikeloc: spiking neural networks that localise sound from the interaural phase difference (IPD).

One subpackage per stage, each importing only from the stages before it::

    config -> task -> neurons -> kernels -> observer -> models -> training -> evaluation -> runs -> analysis
    -> export -> sweeps -> viz -> cli

Shapes, everywhere: ``K`` models of a stack, ``B`` samples of a batch, ``T`` time steps, ``N`` units of a
layer (``I`` input fibres, ``H`` hidden neurons, ``C`` output bins). Every per-model parameter has a
leading ``K``; input spikes are ``(B, T, I)``, shared by the stack, or ``(K, B, T, I)``.

Quick start (see the README)::

    import spikeloc
    run = spikeloc.train(spikeloc.load_config("tiny"))
    run.metrics.test.accuracy.mean

The names below are imported on first use (PEP 562), so ``import spikeloc`` and ``spikeloc --help``
load neither torch nor matplotlib.
"""

import os

import lazy_loader as lazy

# OpenMP threads (PyTorch's, MKL's and numba's pools, GNU OpenMP on Linux) spin briefly before they sleep,
# instead of GNU's default, a thousand times longer: where another job holds a core, each of the thousands
# of small parallel regions of a training step waited that long for a thread that was not scheduled
# (docs/performance.md measures it). OpenMP reads this when it starts, so it is set before anything imports
# torch; a user's GOMP_SPINCOUNT or OMP_WAIT_POLICY is kept.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submodules=["analysis", "config", "evaluation", "export", "kernels", "models", "neurons", "observer",
                "runs", "sweeps", "task", "training", "viz"],
    submod_attrs={
        "config": ["RunConfig", "load_config", "preset_descriptions", "preset_names"],
        "errors": ["SpikelocError"],
        "task": ["Dataset", "continuise", "discretise", "input_signal", "random_ipd_input_signal"],
        "models": ["MembraneModel", "SpikingNetwork", "build_models"],
        "observer": ["IdealObserver", "bound"],
        "training": ["fit"],
        "evaluation": ["evaluate"],
        "runs": ["Run", "load_run", "save", "train"],
        "viz": ["draw"],
    },
)
