"""``docs/config.md`` from the schema: ``python -m spikeloc.config.markdown > docs/config.md``.

A test holds the committed file equal to this output, so the reference never drifts from the code.
"""

from __future__ import annotations

import typing

from .schema import SECTIONS, RunConfig, Section

HEADER = """# Configuration reference

Every field, its default (the source notebook's value), unit and meaning. Presets in
`src/spikeloc/config/presets/` override some fields; `spikeloc config --preset NAME` prints a resolved
config. Generated from the pydantic models in `src/spikeloc/config/schema.py` by
`python -m spikeloc.config.markdown > docs/config.md` (a test checks that it is current).

Older names are still read, in files, overrides and the configs of earlier runs: {old}.
"""


def _table(cls: type[Section], names: list[str]) -> list[str]:
    out = ["| field | default | unit | meaning |", "|---|---|---|---|"]
    for name in names:
        f = cls.model_fields[name]
        allowed = ""
        if typing.get_origin(f.annotation) is typing.Literal:
            allowed = " (one of " + ", ".join(map(repr, typing.get_args(f.annotation))) + ")"
        out.append(f"| `{name}` | `{f.default!r}` | {cls.unit(name) or ''} | {f.description}{allowed} |")
    return out


def reference() -> str:
    old = ", ".join(f"`{s}.{o}` for `{s}.{n}`"
                    for s, cls in SECTIONS.items() for n, o in cls.old_names().items())
    lines = [HEADER.format(old=old), "## top level", ""]
    lines += _table(RunConfig, [n for n in RunConfig.model_fields if n not in SECTIONS])
    for section, cls in SECTIONS.items():
        lines += ["", f"## [{section}]", "", (cls.__doc__ or "").strip(), "",
                  *_table(cls, list(cls.model_fields))]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
