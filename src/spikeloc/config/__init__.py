"""Configuration as data: typed sections (:mod:`.schema`), presets, TOML files and overrides
(:mod:`.loading`)."""

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "schema": ["EVALUABLE_EVAL", "EVALUABLE_STIMULUS", "EvalConfig", "ModelConfig", "PlotConfig", "RunConfig",
               "StimulusConfig", "TrainConfig"],
    "loading": ["config_from_toml_text", "load_config", "parse_override", "preset_descriptions",
                "preset_names", "with_overrides"],
    "markdown": ["reference"],
})
