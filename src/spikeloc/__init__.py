"""spikeloc: spiking neural networks that localise sound from the interaural phase difference.

The stages, each a module with a small public surface::

    config -> stimulus -> model -> train -> evaluate -> plots/report

Quick start (see the README)::

    import spikeloc
    cfg = spikeloc.load_config("default")
    run, raw, data = spikeloc.train(cfg)
    spikeloc.save(run, "runs/mine"); spikeloc.draw(run, raw, Path("runs/mine"))
    spikeloc.load_run("runs/mine").predict(spikes)
"""

from .config import RunConfig, load_config, preset_descriptions, preset_names
from .errors import SpikelocError
from .evaluate import evaluate
from .model import MembraneModel, SpikingModel, build_models
from .run import Run, draw, load_run, save, train
from .stimulus import Dataset, continuise, discretise, input_signal, random_ipd_input_signal
from .train import fit

__all__ = [
    "Dataset", "MembraneModel", "Run", "RunConfig", "SpikelocError", "SpikingModel", "build_models",
    "continuise", "discretise", "draw", "evaluate", "fit", "input_signal", "load_config", "load_run",
    "preset_descriptions", "preset_names", "random_ipd_input_signal", "save", "train",
]
