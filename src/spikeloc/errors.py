"""The one exception type users see: a clear, one-line message about their input."""


class SpikelocError(ValueError):
    """Bad input (config, file, argument). The message names the field or path and what is allowed."""
