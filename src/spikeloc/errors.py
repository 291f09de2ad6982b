"""The exceptions users see: clear, one-line messages."""


class SpikelocError(ValueError):
    """Bad input (config, file, argument) or an environment that refuses (disk full, folder in use). The
    message names the field or path and what is allowed or what to do."""


class TrainingDiverged(SpikelocError):
    """The loss, a gradient or a weight became NaN or infinite: training stops rather than go on from it."""
