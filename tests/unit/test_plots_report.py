"""Plots and the HTML report: the notebook's weight analysis, figures that save, a self-contained report."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from spikeloc.config import RunConfig, StimulusConfig
from spikeloc.errors import SpikelocError
from spikeloc.evaluation.metrics import KindMetrics, RunMetrics, SplitMetrics, Summary
from spikeloc.task.stimulus import phase_delays, random_ipd_input_signal
from spikeloc.training.loop import Epoch
from spikeloc.viz import plots, report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STIM = StimulusConfig(anf_per_ear=10, duration=0.02)


def _weights(inputs=200, hidden=30, outputs=12, seed=0):
    rng = np.random.default_rng(seed)
    W1 = rng.uniform(-0.3, 0.3, (inputs, hidden))
    W1[:, ::3] *= 4  # a third of the units are "strong" (max |w1| >= 0.5)
    return W1, rng.normal(size=(hidden, outputs))


# ---------------------------------------------------------------- notebook weight analysis

def test_reorder_hidden_matches_notebook():
    w1, w2 = _weights()
    # the notebook's expressions, verbatim but for its index name I
    A = np.arange(w1.shape[0])[:, None]
    weighted_mean = np.mean((A * w1), axis=0)
    weighted_mean[np.max(np.abs(w1), axis=0) < .5] = np.inf
    idx = np.argsort(weighted_mean)

    W1, W2, order = plots.reorder_hidden(torch.tensor(w1), w2)
    np.testing.assert_array_equal(order, idx)
    np.testing.assert_array_equal(W1, w1[:, idx])
    np.testing.assert_array_equal(W2, w2[idx, :])
    strong = np.max(np.abs(W1), axis=0) >= 0.5
    assert strong[:strong.sum()].all()  # weak units all come last


@pytest.mark.parametrize("th_percent", [0, 10, 25, 50])
def test_threshold_product_matches_notebook(th_percent):
    w1, w2 = _weights(seed=th_percent)
    w1_w2_raw = w1 @ w2
    # the notebook's expression, verbatim
    w1_w2 = np.where(w1_w2_raw > np.percentile(w1_w2_raw, (100 - th_percent)), np.ones_like(w1_w2_raw),
                     np.zeros_like(w1_w2_raw)) + \
        np.where(w1_w2_raw < np.percentile(w1_w2_raw, th_percent), -1 * np.ones_like(w1_w2_raw),
                 np.zeros_like(w1_w2_raw))
    np.testing.assert_array_equal(plots.threshold_product(w1_w2_raw, th_percent), w1_w2)


def test_threshold_product_extremes():
    even = np.random.default_rng(1).normal(size=(20, 12))
    # strict comparisons with the max and min: nothing passes at 0 %
    assert not plots.threshold_product(even, 0).any()
    # at 50 % both thresholds are the median: every entry of an even-sized matrix is +-1, half each
    levels = plots.threshold_product(even, 50)
    assert set(np.unique(levels)) == {-1, 1} and levels.sum() == 0
    # an odd-sized matrix holds its median, which stays 0
    odd = np.random.default_rng(2).normal(size=(5, 3))
    assert (plots.threshold_product(odd, 50) == 0).sum() == 1
    quarter = plots.threshold_product(even, 25)
    assert (quarter == 1).sum() == (quarter == -1).sum() == 60  # 25 % of 240


# ---------------------------------------------------------------- figures

def _stimuli():
    return random_ipd_input_signal(10, STIM, torch.Generator().manual_seed(0))


def _history(models):
    return [Epoch(e, 2.5 / e, tuple(2.5 / e + 0.1 * k for k in range(models)), 0.01, 1.0)
            for e in range(1, 4)]


def _figures():
    """One builder per plot function, on small but realistic inputs."""
    W1, W2 = _weights(inputs=STIM.inputs, hidden=8, outputs=STIM.num_classes * 2)  # bins_per_class 2
    rng = np.random.default_rng(0)
    true = rng.uniform(-90, 90, 200)
    confusion = rng.random((STIM.num_classes, STIM.num_classes))
    stimuli = _stimuli()
    return {
        "stimulus_examples": lambda: plots.stimulus_examples(stimuli.spikes, stimuli.ipd, STIM, n=5),
        "stimulus_examples_more_than_data": lambda: plots.stimulus_examples(stimuli.spikes, stimuli.ipd, STIM,
                                                                            n=32),
        "loss_curves": lambda: plots.loss_curves({"spiking": _history(3), "membrane": _history(1)},
                                                  {"spiking": 6.6, "membrane": 2.5}, readout_only_epochs=1),
        "loss_curves_shared_chance": lambda: plots.loss_curves(
            {"spiking": _history(1), "membrane": _history(1)}, {"spiking": 2.5, "membrane": 2.5}),
        "loss_curves_no_chance": lambda: plots.loss_curves({"spiking": _history(1), "membrane": []}),
        "ipd_errors": lambda: plots.ipd_errors(true, true + rng.normal(0, 10, 200),
                                               confusion / confusion.sum(0), STIM, "Test"),
        "weights": lambda: plots.weights(W1, torch.tensor(W2), 25),
        "hidden_unit_weights": lambda: plots.hidden_unit_weights(torch.tensor(W1), phase_delays(STIM)),
    }


@pytest.mark.parametrize("name", list(_figures()))
def test_every_plot_saves_a_png(name, tmp_path):
    fig = _figures()[name]()
    assert isinstance(fig, Figure)
    path = plots.save(fig, tmp_path / "sub" / f"{name}.png", dpi=40)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_hidden_unit_weights_falls_back_to_largest_units():
    W1 = np.random.default_rng(0).uniform(-0.1, 0.1, (STIM.inputs, 6))  # no unit passes 0.5
    W1[:, 4] *= 3
    fig = plots.hidden_unit_weights(W1, phase_delays(STIM).numpy(), max_units=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert len(titles) == 3 and all("weak" in t for t in titles)
    with pytest.raises(ValueError, match="inputs"):
        plots.hidden_unit_weights(W1[:-1], phase_delays(STIM))


# ---------------------------------------------------------------- report

def _split(acc, mae, mae_c):
    return SplitMetrics(Summary.of(acc), Summary.of(mae), Summary.of(mae_c))


def _metrics(ideal=True):
    kinds = {"spiking": KindMetrics(train=_split([0.8, 0.7, 0.75], [5.0, 6.0, 5.5], [3.0, 4.0, 3.5]),
                                    test=_split([0.6, 0.65, 0.7], [6.0, 7.0, 8.0], [4.2, 5.0, 4.4])),
             "membrane": KindMetrics(train=_split([0.259], [22.8], [20.1]),
                                     test=_split([0.069], [69.6], [66.6]))}
    return RunMetrics(kinds=kinds, chance=1 / 12, test_samples=2048, models_trained=3,
                      seconds={"train_spiking": 37.25},
                      ideal_observer=KindMetrics(test=_split([0.937], [3.85], [1.04])) if ideal else None)


@pytest.fixture(scope="module")
def figure_files(tmp_path_factory):
    folder, builders = tmp_path_factory.mktemp("figures"), _figures()
    return {name: plots.save(builders[name](), folder / f"{name}.png", dpi=30)
            for name in ("loss_curves", "ipd_errors", "weights")}


def test_report_is_self_contained(tmp_path, figure_files):
    config = RunConfig(description='<script>alert("x")</script> & more')
    path = report.write_report(tmp_path / "out" / "report.html", config, _metrics(), figure_files)
    html = path.read_text(encoding="utf-8")

    images = re.findall(r'<img\b[^>]*\bsrc="data:image/png;base64,[A-Za-z0-9+/=]+"', html)
    assert len(images) == len(figure_files) == html.count("<img")
    assert not re.search(r'(src|href)\s*=\s*["\']?\s*(https?:)?//', html, re.IGNORECASE)
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "num_classes = 12" in html  # the resolved config

    # metric values: mean ± sd (min–max) for a stack, the single value otherwise; accuracy as %
    assert "65.0 ± 5.0 % (60.0–70.0)" in html and "7.00 ± 1.00° (6.00–8.00)" in html  # spiking test
    assert "25.9 %" in html and "69.60°" in html and "93.7 %" in html
    assert "28.7 pts" in html and "+3.15°" in html  # gap of the spiking test mean to the ideal observer


@pytest.mark.parametrize("name, words", [
    ("stimulus examples", "spike trains"), ("training loss", "loss per epoch"),
    ("spiking model, test set", "confusion matrix"), ("ipd_errors_membrane_train", "confusion matrix"),
    ("weights", "re-ordered"), ("hidden unit weights", "individual hidden units")])
def test_report_captions_follow_figure_names(name, words):
    assert words in report._caption(name)


def test_report_without_ideal_observer(tmp_path, figure_files):
    path = report.write_report(tmp_path / "r.html", RunConfig(), _metrics(ideal=False), figure_files)
    html = path.read_text()
    assert "Gap to ideal" not in html and "Ideal observer" not in html
    assert "8.3 %" in html  # chance


def test_report_is_replaced_atomically(tmp_path, figure_files):
    path = tmp_path / "report.html"
    path.write_text("previous report")
    with pytest.raises(SpikelocError, match="missing"):
        report.write_report(path, RunConfig(), _metrics(), {**figure_files, "missing": tmp_path / "nope.png"})
    assert path.read_text() == "previous report"
    report.write_report(path, RunConfig(), _metrics(), figure_files)
    assert path.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left behind
    assert path.stat().st_mode & 0o777 == 0o644


def test_metrics_json_round_trips():
    metrics = _metrics()
    assert RunMetrics.from_json(metrics.to_json()) == metrics
    assert (metrics.test.accuracy.mean == pytest.approx(0.65)
            and metrics.kinds["membrane"].test.mae_deg.sd == 0.0)
    assert list(metrics.to_json()) == ["models", "chance", "models_trained", "test_samples", "ideal_observer",
                                       "seconds"]


def test_hidden_unit_weights_without_phase_delays_are_drawn_by_fibre_index():
    fig = plots.hidden_unit_weights(np.random.default_rng(0).normal(size=(10, 3)), np.zeros(5))
    assert fig.get_supxlabel().startswith("Fibre (index in its ear")
    line = fig.axes[0].lines[1]  # after the zero line: the left ear
    assert list(line.get_xdata()) == [0, 1, 2, 3, 4]
