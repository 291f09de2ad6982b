"""The task: stimuli (:mod:`.stimulus`), their exact likelihood (:mod:`.likelihood`) and IPD bins
(:mod:`.bins`)."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "stimulus": ["Dataset", "input_signal", "phase_delays", "random_ipd_input_signal", "spike_probability"],
    "likelihood": ["log_likelihood_tables"],
    "bins": ["Outcome", "bin_centres", "class_probabilities", "continuise", "discretise", "log_probs",
             "outcome", "posterior_median"],
})
