"""Figures of the hidden-unit analysis (:mod:`spikeloc.analysis`): rates, IPD tuning, ablation, rasters and
errors by IPD. Colours are the Okabe-Ito palette, which colour-blind readers can tell apart."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..analysis.study import Analysis
from ..config.schema import StimulusConfig
from .plots import _ear_axis, _grid

OKABE_ITO = {"orange": "#E69F00", "sky blue": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000"}
EXCITATORY, INHIBITORY = OKABE_ITO["vermillion"], OKABE_ITO["blue"]
ORDER_COLOURS = [OKABE_ITO[c] for c in ("black", "orange", "sky blue", "vermillion")]
MAX_TUNING_PANELS = 36


def _ipd_axis(ax, a: Analysis) -> None:
    half = (a.ipd_deg[1] - a.ipd_deg[0]) / 2
    ax.set_xlim(a.ipd_deg[0] - half, a.ipd_deg[-1] + half)
    ax.set_xlabel("True IPD (deg)")


def unit_rates(a: Analysis) -> Figure:
    """Histogram of the hidden units' mean firing rates (Hz), the silent units as a bar of their own at the
    left; with Dale's law, excitatory and inhibitory units stacked."""
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.subplots()
    top = max(float(a.rate_hz.max()), 2 * a.silent_hz)
    edges = np.linspace(a.silent_hz, top, 21)
    width = edges[1] - edges[0]
    groups = ([(a.sign > 0, "excitatory", EXCITATORY), (a.sign < 0, "inhibitory", INHIBITORY)]
              if a.dale else [(np.ones(len(a.rate_hz), bool), "hidden units", OKABE_ITO["blue"])])
    bottom_silent, bottom = 0, np.zeros(len(edges) - 1)
    for units, label, colour in groups:
        counts, _ = np.histogram(a.rate_hz[units & ~a.silent], bins=edges)
        ax.bar(edges[:-1], counts, width=width, align="edge", bottom=bottom, color=colour, edgecolor="white",
               label=label)
        silent = int((units & a.silent).sum())
        ax.bar(-width, silent, width=width, bottom=bottom_silent, color=colour, edgecolor="white", hatch="//")
        bottom, bottom_silent = bottom + counts, bottom_silent + silent
    ax.set_xticks([-width, *ax.get_xticks()[ax.get_xticks() >= width]])  # "silent" in place of 0
    ax.set_xticklabels(["silent", *(f"{t:g}" for t in ax.get_xticks()[1:])])
    ax.set_xlim(-2 * width, top + width / 2)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="Mean firing rate (Hz)", ylabel="Hidden units",
           title=f"{int(a.silent.sum())} of {len(a.rate_hz)} hidden units silent (< {a.silent_hz:g} Hz, "
                 "hatched bar)")
    if a.dale:
        ax.legend()
    return fig


def tuning_curves(a: Analysis) -> Figure:
    """Small multiples: the IPD tuning curve (rate against IPD) of each active hidden unit, ordered by
    preferred IPD (at most ``MAX_TUNING_PANELS``, spread over that order); markers at the preferred and
    least-preferred IPD."""
    active = np.flatnonzero(~a.silent & np.isfinite(a.preferred_ipd_deg))
    ordered = active[np.argsort(a.preferred_ipd_deg[active], kind="stable")]
    # a large layer: units at equal steps through that order, so every preferred IPD is seen
    steps = np.unique(np.linspace(0, len(ordered) - 1, MAX_TUNING_PANELS).round().astype(int))
    shown = ordered[steps] if len(ordered) > MAX_TUNING_PANELS else ordered
    rows, cols = _grid(max(len(shown), 1), 6)
    fig = Figure(figsize=(2.1 * cols + 0.6, 1.75 * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    for ax, h in zip(axes.flat, shown, strict=False):
        colour = INHIBITORY if a.sign[h] < 0 else EXCITATORY
        ax.plot(a.ipd_deg, a.hidden_tuning_hz[:, h], color=colour, linewidth=1.5)
        ax.axvline(a.preferred_ipd_deg[h], color="0.2", linewidth=0.8)
        ax.axvline(a.least_preferred_ipd_deg[h], color="0.2", linewidth=0.8, linestyle=":")
        ax.set_title(f"unit {h}: best {a.preferred_ipd_deg[h]:.0f}°", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_ylim(bottom=0)
    for ax in axes[-1]:
        ax.set_xlabel("IPD (deg)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("Rate (Hz)", fontsize=8)
    more = (f", {len(shown)} of {len(active)} spread over the preferred IPDs" if len(active) > len(shown)
            else "")
    kinds = " (red: excitatory, blue: inhibitory)" if a.dale else ""
    fig.suptitle(f"IPD tuning of the active hidden units{more}, ordered by preferred IPD{kinds}; "
                 "solid line: preferred, dotted: least preferred", fontsize=10)
    return fig


def preferred_ipds(a: Analysis) -> Figure:
    """Distributions of the active units' preferred and least-preferred IPDs, and their tuning widths."""
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[3, 2])
    width = a.ipd_deg[1] - a.ipd_deg[0]
    edges = np.concatenate([a.ipd_deg - width / 2, [a.ipd_deg[-1] + width / 2]])
    active = np.isfinite(a.preferred_ipd_deg)
    left.hist([a.preferred_ipd_deg[active], a.least_preferred_ipd_deg[active]], bins=edges,
              label=["preferred IPD", "least-preferred IPD"],
              color=[OKABE_ITO["vermillion"], OKABE_ITO["blue"]])
    left.set(ylabel="Active hidden units", title=f"Preferred IPDs of the {int(active.sum())} active units")
    _ipd_axis(left, a)
    left.set_xlabel("IPD (deg)")
    left.legend(fontsize=8)
    right.hist(a.tuning_width_deg[active], bins=edges - edges[0], color=OKABE_ITO["green"], edgecolor="white")
    right.set(xlabel="Tuning width (deg, above half height)", ylabel="Active hidden units",
              title="Tuning widths")
    for ax in (left, right):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def output_tuning(a: Analysis, stim: StimulusConfig) -> Figure:
    """Mean posterior probability of each output class against the true IPD, one line per class."""
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.subplots()
    classes = a.output_tuning.shape[1]
    cmap = colormaps["viridis"]
    class_width = (stim.ipd_max_deg - stim.ipd_min_deg) / classes
    for c in range(classes):
        ax.plot(a.ipd_deg, a.output_tuning[:, c], color=cmap(c / max(classes - 1, 1)), linewidth=1.4)
    for c in range(classes + 1):
        ax.axvline(stim.ipd_min_deg + c * class_width, color="0.85", linewidth=0.6, zorder=0)
    ax.set(ylabel="Mean probability of the class", ylim=(0, 1), title="Output-class tuning")
    _ipd_axis(ax, a)
    bar = fig.colorbar(ScalarMappable(Normalize(0, classes - 1), cmap), ax=ax,
                       label="Output class (IPD order)")
    bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def ablation(a: Analysis, chance: float) -> Figure:
    """Left: accuracy as hidden units are removed in four orders. Right: accuracy without each single unit,
    against its rate."""
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    for (name, curve), colour in zip(a.ablation.items(), ORDER_COLOURS, strict=False):
        left.plot(a.removed, 100 * curve, label=name, color=colour, marker="o", markersize=2.5, linewidth=1.3)
    left.axhline(100 * chance, color="0.5", linestyle="--", linewidth=1, label="chance")
    silent = int(a.silent.sum())
    left.axvline(silent, color="0.6", linestyle=":", linewidth=1)
    left.set(xlabel="Hidden units removed", ylabel="Accuracy (%)", ylim=(0, 100),
             title=f"Ablation (dotted: the {silent} silent units)")
    left.legend(fontsize=8)
    colours = np.where(a.sign < 0, INHIBITORY, EXCITATORY) if a.dale else OKABE_ITO["blue"]
    right.scatter(a.rate_hz, 100 * a.single_unit_effect, c=colours, s=14)
    right.axhline(0, color="0.5", linewidth=0.8)
    right.set(xlabel="Mean firing rate of the unit (Hz)", ylabel="Accuracy lost without it (points)",
              title="Single-unit ablation" + (" (red: excitatory, blue: inhibitory)" if a.dale else ""))
    return fig


def error_by_ipd(a: Analysis) -> Figure:
    """Accuracy and absolute error against the true IPD: where the network fails."""
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    width = a.ipd_deg[1] - a.ipd_deg[0]
    left.bar(a.ipd_deg, 100 * a.accuracy_by_ipd, width=0.9 * width, color=OKABE_ITO["blue"])
    left.set(ylabel="Accuracy (%)", ylim=(0, 100),
             title=f"Accuracy by IPD (overall {100 * a.accuracy:.1f} %)")
    right.bar(a.ipd_deg, a.mae_by_ipd_deg, width=0.9 * width, color=OKABE_ITO["orange"])
    right.set(ylabel="Mean absolute error (deg)", title="Absolute error by IPD")
    for ax in (left, right):
        _ipd_axis(ax, a)
    return fig


def hidden_rasters(inputs, hidden, ipd, stim: StimulusConfig, sign=None) -> Figure:
    """Input and hidden-layer spike rasters of a few example stimuli, side by side: ``inputs`` ``(n, T, I)``,
    ``hidden`` ``(n, T, H)`` (0/1), ``ipd`` (rad)."""
    n = len(inputs)
    fig = Figure(figsize=(10, 2.1 * n + 0.7), layout="constrained")
    axes = fig.subplots(n, 2, squeeze=False, sharex=True)
    duration_ms = stim.steps * stim.dt * 1e3
    cmap = ListedColormap(["white", EXCITATORY if sign is not None else "black", INHIBITORY])
    for i in range(n):
        ax_in, ax_hid = axes[i]
        ax_in.imshow(inputs[i].T, origin="lower", interpolation="nearest", aspect="auto", cmap="gray_r",
                     extent=(0, duration_ms, -0.5, inputs.shape[2] - 0.5))
        _ear_axis(ax_in, inputs.shape[2])
        ax_in.set_title(f"Input, true IPD = {np.degrees(ipd[i]):.0f}°", fontsize=9)
        # 0: no spike, 1: a spike of an excitatory (or any) unit, 2: of an inhibitory unit
        kind = hidden[i].T * (1 + (sign < 0)[:, None] if sign is not None else 1)
        ax_hid.imshow(kind, origin="lower", interpolation="nearest", aspect="auto", cmap=cmap, vmin=0, vmax=2,
                      extent=(0, duration_ms, -0.5, hidden.shape[2] - 0.5))
        ax_hid.set(ylabel="Hidden unit")
        ax_hid.set_title(f"Hidden layer: {int(hidden[i].sum())} spikes from "
                         f"{int(hidden[i].any(0).sum())} of {hidden.shape[2]} units", fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("Time (ms)")
    if sign is not None:
        fig.suptitle("Hidden spikes of excitatory units in red, of inhibitory units in blue", fontsize=10)
    return fig
