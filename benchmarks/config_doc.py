"""Write docs/config.md from the config models: `.venv/bin/python benchmarks/config_doc.py > docs/config.md`."""
import typing
from spikeloc.config import _SECTIONS, RunConfig
lines = ["# Configuration reference", "",
         "Every field, its default (the source notebook's value) and meaning. Presets in",
         "`src/spikeloc/presets/` override some fields; `spikeloc config --preset NAME` prints a resolved config.",
         "Generated from the pydantic models in `src/spikeloc/config.py`.", ""]
def table(cls, names):
    out = ["| field | default | meaning |", "|---|---|---|"]
    for name in names:
        f = cls.model_fields[name]
        allowed = ""
        if typing.get_origin(f.annotation) is typing.Literal:
            allowed = " (one of " + ", ".join(map(repr, typing.get_args(f.annotation))) + ")"
        out.append(f"| `{name}` | `{f.default!r}` | {(f.description or '')}{allowed} |")
    return out
lines += ["## top level", ""] + table(RunConfig, ["description", "seed", "device"])
for section, cls in _SECTIONS.items():
    lines += ["", f"## [{section}]", "", (cls.__doc__ or "").strip(), ""] + table(cls, list(cls.model_fields))
print("\n".join(lines))
