"""Figures of a run: example stimuli, training loss, IPD errors and trained weights.

Every plotting function returns a :class:`matplotlib.figure.Figure` built without pyplot, so
nothing depends on the interactive backend and no figure is kept alive by global state;
write it with :func:`save`. Arrays may be NumPy arrays or (CPU or GPU) torch tensors.

The weight analysis follows the source notebook: hidden units are re-ordered by the
weighted mean index of the inputs they listen to (:func:`reorder_hidden`), and the product
``W1 @ W2`` is shown thresholded to three levels (:func:`threshold_product`).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from matplotlib.colors import BoundaryNorm, ListedColormap, to_rgba
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..config.schema import StimulusConfig
from ..runs.files import write_atomic
from ..training.loop import Epoch

DPI = 150
WEAK_UNIT = 0.5  # notebook: hidden units whose largest |w1| is below this are sorted last
WEIGHT_CMAP = "RdBu_r"  # diverging, white at 0 once the limits are symmetric
EAR_LINE = {"color": "tab:green", "linewidth": 1.2}  # visible on grey rasters and red/blue maps


def png(fig: Figure, dpi: int = DPI) -> bytes:
    """``fig`` as PNG bytes; the figure is released (not registered with pyplot: clearing frees
    every artist)."""
    buf = io.BytesIO()
    # zlib level 1: somewhat larger files than the default 6, drawn faster (docs/performance.md)
    fig.savefig(buf, dpi=dpi, format="png", pil_kwargs={"compress_level": 1})
    fig.clear()
    return buf.getvalue()


def save(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``fig`` as PNG (creating the folder, atomically) and release it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, png(fig, dpi))


# ---------------------------------------------------------------- helpers

def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def _image(ax, matrix: np.ndarray, title: str, xlabel: str, ylabel: str, cbar_label: str,
           extent=None, **imshow_kw):
    """The notebook's ``imshow`` (origin lower, nearest, auto aspect) with labels and a colour bar."""
    im = ax.imshow(matrix, origin="lower", interpolation="nearest", aspect="auto", extent=extent, **imshow_kw)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax.figure.colorbar(im, ax=ax, label=cbar_label)


def _weight_image(ax, matrix: np.ndarray, title: str, xlabel: str, ylabel: str, cbar_label: str = "Weight"):
    """Weights on a diverging map with limits symmetric about 0, so 0 is always white."""
    vmax = float(np.abs(matrix).max()) or 1.0
    return _image(ax, matrix, title, xlabel, ylabel, cbar_label, cmap=WEIGHT_CMAP, vmin=-vmax, vmax=vmax)


def _ear_axis(ax, inputs: int) -> None:
    """Label the input-fibre axis by ear (left ear first) and draw the boundary between ears."""
    half = inputs / 2
    ax.axhline(half - 0.5, **EAR_LINE)
    ax.set_yticks([half / 2 - 0.5, 1.5 * half - 0.5], ["left ear", "right ear"], rotation=90, va="center")
    ax.tick_params(axis="y", length=0)


# ---------------------------------------------------------------- stimuli and training

def stimulus_examples(spikes, ipd, cfg: StimulusConfig, n: int = 8) -> Figure:
    """Spike rasters of the first ``n`` stimuli, ``spikes`` ``(n, T, I)``, each titled with its true IPD
    (``ipd``, rad)."""
    n = min(n, len(spikes))
    spikes, ipd_deg = _np(spikes[:n]), np.degrees(_np(ipd[:n]))
    rows, cols = _grid(n, 4)
    fig = Figure(figsize=(2.6 * cols + 0.6, 2.3 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    duration_ms = cfg.steps * cfg.dt * 1e3
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_visible(False)
            continue
        # extent puts time in ms on x and keeps one row per fibre on y
        ax.imshow(spikes[i].T, origin="lower", interpolation="nearest", aspect="auto", cmap="gray_r",
                  extent=(0, duration_ms, -0.5, spikes.shape[2] - 0.5))
        _ear_axis(ax, spikes.shape[2])
        ax.set_title(f"True IPD = {ipd_deg[i]:.0f}°")
    for ax in axes[-1]:
        ax.set_xlabel("Time (ms)")
    for ax in axes[:, 0]:
        ax.set_ylabel("Input fibre")
    fig.suptitle(f"Example stimuli ({cfg.anf_per_ear} fibres per ear; black = spike)")
    return fig


def loss_curves(histories: dict[str, list[Epoch]], chance: dict[str, float] | None = None,
                readout_only_epochs: int = 0) -> Figure:
    """Training loss per epoch of each named model kind; a stack's models thin, their mean thick.

    ``chance`` maps a kind to its loss for a uniform guess, drawn dashed in the kind's colour (the
    kinds' losses can differ: fine bins and the class term), or in grey where kinds share it. With
    ``readout_only_epochs`` the end of the readout-only stage is marked. Epochs with a validation accuracy
    draw it too (mean over the models), dash-dotted, against the right axis.
    """
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    validated = any(row.validation_accuracy for history in histories.values() for row in history)
    accuracy_ax = ax.twinx() if validated else None
    colours = iter(["tab:blue", "tab:red", "tab:green", "tab:purple", "tab:brown"])
    levels: dict[float, list[tuple[str, str]]] = {}
    for name, history in histories.items():
        if not history:
            continue
        colour = next(colours)
        epochs = [row.epoch for row in history]
        per_model = np.array([row.loss_per_model for row in history])  # (epochs, models)
        k = per_model.shape[1]
        if k > 1:
            ax.plot(epochs, per_model, color=colour, linewidth=0.8, alpha=0.35)
        label = f"{name} (mean of {k} models)" if k > 1 else name
        ax.plot(epochs, [row.loss for row in history], color=colour, linewidth=2.2, marker="o",
                markersize=3, label=label)
        if chance and name in chance:
            levels.setdefault(round(chance[name], 9), []).append((name, colour))
        rows = [row for row in history if row.validation_accuracy]
        if accuracy_ax is not None and rows:
            accuracy_ax.plot([row.epoch for row in rows], [100 * row.validation_mean for row in rows],
                             color=colour, linestyle="-.", marker="s", markersize=3, linewidth=1.4,
                             label=f"{name}: validation accuracy")
    for value, kinds in levels.items():  # kinds with the same loss share one grey line
        name, colour = kinds[0] if len(kinds) == 1 else ("", "grey")
        ax.axhline(value, color=colour, linestyle="--", linewidth=1,
                   label=f"{name + ': ' if name else ''}uniform guess, {value:.2f}")
    if readout_only_epochs:
        ax.axvline(readout_only_epochs + 0.5, color="grey", linestyle=":", linewidth=1.2,
                   label=f"readout only until epoch {readout_only_epochs}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title="Training loss" + (" and validation accuracy" if validated else ""), xlabel="Epoch",
           ylabel="Loss (nats)")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if accuracy_ax is not None:
        accuracy_ax.set(ylabel="Validation accuracy (%)", ylim=(0, 100))
        more = accuracy_ax.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, loc="best", fontsize=8 if validated else None)
    return fig


# ---------------------------------------------------------------- errors

def ipd_errors(ipd_true_deg, ipd_est_deg, confusion, cfg: StimulusConfig, title: str) -> Figure:
    """Histogram of true and estimated IPDs, and the confusion matrix (columns: true class)."""
    ipd_true_deg, ipd_est_deg = _np(ipd_true_deg), _np(ipd_est_deg)
    lo, hi = cfg.ipd_min_deg, cfg.ipd_max_deg
    edges = np.linspace(lo, hi, cfg.num_classes + 1)
    ticks = MaxNLocator(nbins=7, steps=[1, 1.5, 3, 5, 10])
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    hist_ax, conf_ax = fig.subplots(1, 2)

    mae = float(np.mean(np.abs(ipd_true_deg - ipd_est_deg)))
    counts, _, _ = hist_ax.hist([ipd_true_deg, ipd_est_deg], bins=edges, label=["True", "Estimated"],
                                color=["tab:grey", "tab:blue"])
    # headroom above the tallest bar keeps the legend off the bars
    hist_ax.set(title=f"True vs estimated IPD (MAE {mae:.1f}°)", xlabel="IPD (deg)", ylabel="Samples",
                xlim=(lo, hi), ylim=(0, 1.2 * max(np.max(counts), 1)))
    hist_ax.xaxis.set_major_locator(ticks)
    hist_ax.legend(loc="upper center", ncols=2)

    _image(conf_ax, _np(confusion), "Confusion matrix (normalised per true IPD)", "True IPD (deg)",
           "Estimated IPD (deg)", "Fraction of true class", extent=(lo, hi, lo, hi), vmin=0, vmax=1)
    conf_ax.xaxis.set_major_locator(ticks)
    conf_ax.yaxis.set_major_locator(ticks)
    fig.suptitle(title)
    return fig


# ---------------------------------------------------------------- weights

def _hidden_order(W1: np.ndarray) -> np.ndarray:
    """The notebook's order: weighted mean input index per hidden unit, weak units last."""
    A = np.arange(W1.shape[0])[:, None]
    weighted_mean = np.mean(A * W1, axis=0)
    weighted_mean[np.max(np.abs(W1), axis=0) < WEAK_UNIT] = np.inf
    return np.argsort(weighted_mean)


def reorder_hidden(W1, W2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Re-order hidden units as the notebook does: returns ``(W1[:, I], W2[I, :], I)``."""
    W1, W2 = _np(W1), _np(W2)
    order = _hidden_order(W1)
    return W1[:, order], W2[order, :], order


def threshold_product(product, th_percent: float) -> np.ndarray:
    """Top ``th_percent`` % of entries -> +1, bottom ``th_percent`` % -> -1, the rest 0 (notebook rule).

    Comparisons are strict, so ``th_percent=0`` gives all zeros and ``50`` gives +-1 everywhere
    except entries equal to the median.
    """
    product = _np(product)
    top = product > np.percentile(product, 100 - th_percent)
    bottom = product < np.percentile(product, th_percent)
    return top.astype(float) - bottom.astype(float)


def weights(W1, W2, th_percent: float) -> Figure:
    """Re-ordered ``W1`` and ``W2``, their product ``W1 W2``, and the product thresholded.

    The dashed line separates the hidden units with max |w1| >= 0.5 from the weak ones,
    which the re-ordering puts last.
    """
    W1, W2, _ = reorder_hidden(W1, W2)
    product = W1 @ W2
    strong = int((np.max(np.abs(W1), axis=0) >= WEAK_UNIT).sum())
    fig = Figure(figsize=(12, 8.5), layout="constrained")
    (ax1, ax2), (ax3, ax4) = fig.subplots(2, 2)
    hidden = "Hidden unit (re-ordered)"
    _weight_image(ax1, W1, "$W_1$", hidden, "Input fibre")
    _weight_image(ax2, W2, "$W_2$", "Output unit", hidden)
    _weight_image(ax3, product, "$W_1 W_2$", "Output unit", "Input fibre", "Weight product")

    levels = ListedColormap(["tab:blue", "white", "tab:red"])
    three_levels = BoundaryNorm([-1.5, -0.5, 0.5, 1.5], levels.N)
    cbar = _image(ax4, threshold_product(product, th_percent),
                  f"$W_1 W_2$ thresholded (top/bottom {th_percent:g} %)", "Output unit", "Input fibre",
                  "Level (+1: top, −1: bottom)", cmap=levels, norm=three_levels)
    cbar.set_ticks([-1, 0, 1], labels=["−1", "0", "+1"])

    for ax in (ax1, ax3, ax4):
        _ear_axis(ax, W1.shape[0])
    if 0 < strong < W1.shape[1]:
        ax1.axvline(strong - 0.5, color="k", linestyle="--", linewidth=1)
        ax2.axhline(strong - 0.5, color="k", linestyle="--", linewidth=1)
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"Trained weights ({strong} of {W1.shape[1]} hidden units "
                 f"with max |$w_1$| ≥ {WEAK_UNIT})")
    return fig


def _units_to_show(W1: np.ndarray, max_units: int) -> np.ndarray:
    """Positions (in re-ordered order) of strong units; topped up with the largest-weight weak ones."""
    peak = np.max(np.abs(W1), axis=0)
    strong = np.flatnonzero(peak >= WEAK_UNIT)
    weak = np.setdiff1d(np.arange(W1.shape[1]), strong)
    weak = weak[np.argsort(-peak[weak], kind="stable")]
    return np.concatenate([strong, weak])[:max_units]


def hidden_unit_weights(W1, delays, max_units: int = 15) -> Figure:
    """Left- and right-ear ``W1`` weights of up to ``max_units`` hidden units against the fibres' phase
    delays (``delays``, rad, one per fibre of an ear: :func:`spikeloc.task.stimulus.phase_delays`).

    Units are numbered by their position in the re-ordered ``W1`` of :func:`weights`.
    """
    W1, delay_deg = _np(W1), np.degrees(_np(delays))
    by_index = np.ptp(delay_deg) == 0  # fibres without phase delays: by their index instead
    if W1.shape[0] != 2 * len(delay_deg):
        raise ValueError(f"W1 has {W1.shape[0]} inputs but {len(delay_deg)} delays give {2 * len(delay_deg)}")
    W1 = W1[:, _hidden_order(W1)]
    units = _units_to_show(W1, max_units)
    rows, cols = _grid(len(units), 5)
    fig = Figure(figsize=(2.6 * cols + 0.8, 2.0 * rows + 1.0), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    half = len(delay_deg)
    x = np.arange(half) if by_index else delay_deg
    for ax, j in zip(axes.flat, units, strict=False):  # spare axes are hidden below
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.plot(x, W1[:half, j], color="tab:blue", label="Left ear")
        ax.plot(x, W1[half:, j], color="tab:red", label="Right ear")
        weak = " (weak)" if np.abs(W1[:, j]).max() < WEAK_UNIT else ""
        ax.set_title(f"Unit {j}{weak}", fontsize="medium")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 1.5, 3, 5, 10]))
    for ax in axes.flat[len(units):]:
        ax.set_visible(False)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside upper right", ncols=2)
    fig.supxlabel("Fibre (index in its ear; no phase delays)" if by_index else "Fibre phase delay (deg)")
    fig.supylabel("$W_1$ weight")
    fig.suptitle("Individual $W_1$ weights of hidden units (re-ordered numbering)")
    return fig


def robustness(curves: list, chance: float) -> Figure:
    """Test accuracy (%) against each perturbation of the input spikes (one panel per curve of
    :func:`spikeloc.runs.robustness.robustness_curves`), one line per model kind: the mean over a stack's
    models with their range shaded; chance dashed."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(curves)))
    colours = {"spiking": "tab:blue", "membrane": "tab:red"}
    for ax, curve in zip(axes, curves, strict=True):
        for kind, per_level in curve.accuracy.items():
            acc = 100 * np.array(per_level)  # (levels, models)
            colour = colours.get(kind, "tab:green")
            ax.plot(curve.levels, acc.mean(1), color=colour, marker="o", markersize=4, linewidth=1.8,
                    label=f"{kind}" + (f" (mean of {acc.shape[1]} models, range shaded)" if acc.shape[1] > 1
                                       else ""))
            if acc.shape[1] > 1:
                ax.fill_between(curve.levels, acc.min(1), acc.max(1), color=colour, alpha=0.15, linewidth=0)
        ax.axhline(100 * chance, color="grey", linestyle="--", linewidth=1, label="chance")
        ax.set_xlabel(curve.name[0].upper() + curve.name[1:] + (" (fraction of spikes removed)"
                                                                if curve.name == "spike deletion" else ""))
        ax.set_ylabel("Test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, frameon=False)
    fig.suptitle("Robustness: test accuracy as the input spikes are deleted or jittered")
    return fig


def learned_delays(delay_in_ms, W1, delay_out_ms, W2, anf_per_ear: int, max_delay_ms: float) -> Figure:
    """Learned synaptic delays (ms, as evaluation rounds them), one dot per synapse: against the input fibre
    for W1 ``(I, H)`` (left ear, then right) and against the hidden unit for W2 ``(H, C)``; red excitatory,
    blue inhibitory, opacity by the weight's size (the ``Quick_Start_Delay_DCLS`` notebook's figure)."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2, width_ratios=[2, 1])
    rng = np.random.default_rng(0)  # a little horizontal jitter, drawn the same every time
    panels = [(axes[0], _np(delay_in_ms), _np(W1), "Input fibre (left ear, then right)",
               "W1: input -> hidden"),
              (axes[1], _np(delay_out_ms), _np(W2), "Hidden unit", "W2: hidden -> output")]
    for ax, delay, W, xlabel, title in panels:
        pre = np.repeat(np.arange(W.shape[0]), W.shape[1]).astype(float)
        pre += rng.uniform(-0.3, 0.3, pre.shape)
        w, d = W.reshape(-1), delay.reshape(-1)
        size = np.abs(w) / max(np.abs(w).max(), 1e-12)
        for sign, colour, label in ((1, "tab:red", "excitatory (w > 0)"),
                                    (-1, "tab:blue", "inhibitory (w < 0)")):
            keep = np.sign(w) == sign
            colours = np.zeros((keep.sum(), 4))
            colours[:] = to_rgba(colour)
            colours[:, 3] = 0.1 + 0.8 * size[keep]
            ax.scatter(pre[keep], d[keep], s=6, c=colours, linewidths=0, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Delay (ms)")
        ax.set_ylim(-1, max_delay_ms + 1)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].axvline(anf_per_ear - 0.5, **EAR_LINE)
    legend = axes[0].legend(fontsize=8, frameon=False, loc="upper right", markerscale=2)
    for handle in legend.legend_handles:  # the legend's dots at full colour, not the first synapse's opacity
        handle.set_alpha(1)
    fig.suptitle("Learned synaptic delays (opacity: |weight|)")
    return fig
