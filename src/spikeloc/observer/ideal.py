"""The Bayesian ideal observer of the IPD: the best any network can do on this stimulus.

The spikes are independent given the phases, so the log-likelihood of a stimulus is the sum
over its steps and fibres of the per-spike terms of :mod:`spikeloc.task.likelihood`:

    log L(ipd, offset) = sum_{t,i} x_ti a(theta_ti) + sum_{t,i} b(theta_ti),
    theta_ti = 2*pi*(f*t*dt + offset) + d_i           (+ ipd in the right ear).

Priors: IPD uniform on ``cfg.ipd_range`` (rad), offset uniform on [0, 1) cycles.

How it is computed (every step exact up to quadrature on the phase grid and rounding):

* The left ear depends only on ``psi = offset``, the right ear only on ``psi = offset + ipd/(2*pi)``
  (cycles), and both through the same function of ``psi``::

      ell_ear(psi) = sum_{t,i} x_ti A[(t,i), psi] + B(psi),
      A[(t,i), psi] = a(2*pi*(f*t*dt + psi) + d_i),   B(psi) = sum_{t,i} b(...),

  so both ears are one matrix product of the spikes with a log-odds table on the phase grid
  ``psi_j = j/M`` (``M = phase_grid`` points per cycle).
* Folding: if ``f*dt = a/P`` exactly (lowest terms) with ``P < steps``, steps with equal
  ``a*t mod P`` have equal phases, so spike counts per (phase bin, fibre) are sufficient and the
  table has ``P`` rows per fibre instead of ``steps``. Otherwise the full (steps, fibres) table is used.
* Offset unknown: the offset grid is the same grid, ``offset_k = k/M``, so the IPD lands on the grid
  ``2*pi*m/M`` and ``post(m) ~ sum_k exp(ell_L(k) + ell_R(k + m))``: a circular cross-correlation,
  done with the log-sum-exp shift (subtract each ear's maximum) and an FFT.
* Offset known (``o``): ``post(ipd) ~ exp(ell_R(o + ipd/(2*pi)))``; the grid point ``psi_j`` is the IPD
  ``2*pi*(j/M - o)``. The left ear is a constant and drops out.
* Bins: the posterior density at each grid point stands for a cell of width ``2*pi/M`` (midpoint
  rule), and a bin's mass is the integral of that piecewise-constant density over the bin, cells
  cut at bin edges; outside the IPD range the prior is zero.

Precision: log-likelihoods are accumulated in float64. The FFT and the cumulative sums leave an
absolute error of about 1e-15 of the peak posterior density, so log posteriors below about -30
are noise (floored at ``log(FLOOR)``); no metric depends on them.

Cost: the table holds ``rows * anf_per_ear * phase_grid`` float64 (rows = phase bins when folded,
else steps: 58 MB folded, 115 MB unfolded for the default stimulus); each sample costs one product
of its ``2 * rows * anf_per_ear`` counts with it.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction

import torch

from ..config.schema import StimulusConfig
from ..task.bins import outcome
from ..task.likelihood import FLOOR, log_likelihood_tables
from ..task.stimulus import random_ipd_input_signal


def _phase_rows(cfg: StimulusConfig, fold: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Folding matrix ``(rows, steps)`` (None: rows are the steps) and each row's phase (cycles).

    Rows are phase bins when folding is exact: ``fold[r, t] = 1`` if step ``t`` falls in bin ``r``.
    """
    steps = cfg.steps
    ratio = Fraction(cfg.f * cfg.dt).limit_denominator(steps)
    period = ratio.denominator
    # exact to 1e-9 cycles over the whole stimulus, else folding would change the likelihood
    exact = abs(float(ratio) - cfg.f * cfg.dt) * steps < 1e-9
    if fold and exact and period < steps:
        row = (ratio.numerator * torch.arange(steps)) % period
        matrix = torch.nn.functional.one_hot(row, period).T.float()
        return matrix, torch.arange(period, dtype=torch.float64) / period
    return None, torch.arange(steps, dtype=torch.float64) * cfg.dt * cfg.f  # as stimulus.spike_probability


class IdealObserver(torch.nn.Module):
    """Posterior over IPD bins given the spikes, with the exact Bernoulli likelihood.

    ``bins_per_class`` fine bins per class (``bins = num_classes * bins_per_class``) span the IPD
    range; ``phase_grid`` points per cycle set both the offset grid and the IPD grid (spacing
    ``360/phase_grid`` deg; they must be equal for the shift structure); ``fold=False`` forces the
    full likelihood even where folding is exact (for checking).

    ``forward(x)`` takes spikes ``(B, T, I)`` and returns ``(scores, None)`` with scores
    ``(1, B, bins)`` the log posterior, offset unknown: a drop-in for a trained model in
    :func:`spikeloc.evaluation.evaluate`. :meth:`log_posterior` also takes known offsets.
    """

    def __init__(self, cfg: StimulusConfig, bins_per_class: int = 30, phase_grid: int = 1440,
                 fold: bool = True, batch_size: int = 256):
        super().__init__()
        self.cfg, self.grid, self.batch_size = cfg, phase_grid, batch_size
        self.bins = cfg.num_classes * bins_per_class
        fold_matrix, phase = _phase_rows(cfg, fold)
        steps_per_row = torch.ones(len(phase)) if fold_matrix is None else fold_matrix.sum(1)
        log_odds, silence = log_likelihood_tables(cfg, phase, phase_grid)
        silence = steps_per_row.double() @ silence  # every step of a row has the same silence term
        self.register_buffer("fold", fold_matrix, persistent=False)
        self.register_buffer("log_odds", log_odds, persistent=False)
        self.register_buffer("silence", silence, persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.log_posterior(x)[None], None

    @torch.no_grad()
    def ear_log_likelihoods(self, spikes: torch.Tensor) -> torch.Tensor:
        """``ell`` ``(n, 2, grid)``: log-likelihood of each ear's spikes at phase ``psi_j = j/grid``.

        Left ear: ``psi`` is the offset; right ear: ``psi`` is offset + ipd/(2*pi) (cycles).
        """
        n, fibres = len(spikes), self.cfg.anf_per_ear
        x = spikes.to(self.log_odds.device, torch.float32)
        if self.fold is not None:
            x = self.fold @ x  # spike counts per (phase bin, fibre): integers, exact in float32
        # (n, rows, 2, fibres) -> (n, 2, rows, fibres) -> (n*2, rows*fibres)
        per_ear = x.unflatten(-1, (2, fibres)).transpose(1, 2).reshape(n * 2, -1).double()
        return (per_ear @ self.log_odds + self.silence).view(n, 2, self.grid)  # (n*2, grid) -> (n, 2, grid)

    @torch.no_grad()
    def log_posterior(self, spikes: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
        """Log posterior over the IPD bins, ``(n, bins)`` float32.

        ``spikes`` ``(n, T, I)`` (any dtype); ``offset`` ``(n,)`` cycles: the true phase offsets
        if known, else None to marginalise over a uniform offset.
        """
        return torch.cat([self.log_posterior_from(self.ear_log_likelihoods(spikes[sl]),
                                                  None if offset is None else offset[sl])
                          for sl in self.chunks(len(spikes))])

    def chunks(self, n: int) -> list[slice]:
        """Batches of samples that bound the float64 scratch."""
        return [slice(start, start + self.batch_size) for start in range(0, n, self.batch_size)]

    @torch.no_grad()
    def log_posterior_from(self, ell: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`log_posterior` from :meth:`ear_log_likelihoods` ``ell`` ``(n, 2, grid)``."""
        shifted = (ell - ell.amax(-1, keepdim=True)).exp()
        if offset is None:
            left, right = torch.fft.rfft(shifted, dim=-1).unbind(1)
            density = torch.fft.irfft(left.conj() * right, n=self.grid)  # sum_k L(k) R(k+m)
            centre = torch.zeros(len(ell), dtype=torch.float64, device=ell.device)
        else:
            density = shifted[:, 1]
            centre = -2 * math.pi * offset.to(ell)
        return self._bin_mass(density, centre).clamp(min=FLOOR).log().float()

    def _bin_mass(self, density: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
        """Normalised mass per IPD bin ``(n, bins)`` of a density on a circular grid ``(n, grid)``.

        Grid point ``j`` is the IPD ``centre + j*h`` (rad, mod 2*pi), ``h = 2*pi/grid``, and stands for
        the cell of width ``h`` around it; the mass below an IPD is read off the cumulative sum of cells.
        """
        lo, hi = self.cfg.ipd_range
        h = 2 * math.pi / self.grid
        first = torch.floor((lo - centre) / h + 0.5).long()  # the cell holding lo
        cells = int((hi - lo) / h) + 2  # enough cells, unrolled around the circle, to cover [lo, hi]
        q = density.clamp(min=0).gather(1, (first[:, None] + torch.arange(cells, device=density.device))
                                        % self.grid)
        cdf = torch.cat([q.new_zeros(len(q), 1), q.cumsum(1)], 1)  # mass below each cell's left edge
        edges = torch.linspace(lo, hi, self.bins + 1, dtype=torch.float64, device=density.device)
        u = (edges - (centre + (first - 0.5) * h)[:, None]) / h  # edges in cells from the first cell
        k = u.floor().long().clamp(0, cells - 1)
        below = cdf.gather(1, k) + (u - k) * q.gather(1, k)
        mass = below.diff(dim=1).clamp(min=0)
        # all-zero only if the whole range sits below the noise floor: then every bin gets FLOOR
        return mass / mass.sum(1, keepdim=True).clamp(min=FLOOR)


def _wilson(successes: float, n: int, z: float = 1.96) -> list[float]:
    """95 % Wilson score interval of a proportion."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [centre - half, centre + half]


def _mean_ci(values: torch.Tensor, z: float = 1.96) -> tuple[float, list[float]]:
    """Mean and its 95 % normal interval."""
    mean = values.mean().item()
    half = z * values.std().item() / math.sqrt(len(values))
    return mean, [mean - half, mean + half]


def observer_metrics(bin_probs: torch.Tensor, ipd: torch.Tensor, cfg: StimulusConfig) -> dict:
    """Accuracy, midpoint MAE and posterior-median MAE (deg) with 95 % intervals.

    ``bin_probs`` ``(n, bins)``; the errors are those of :func:`spikeloc.task.bins.outcome`, as the
    models' metrics are.
    """
    deg = 180 / math.pi
    result = outcome(bin_probs, ipd.double(), cfg)
    out = {"accuracy": result.correct.mean().item(),
           "accuracy_ci": _wilson(result.correct.sum().item(), len(result.correct))}
    out["mae_midpoint_deg"], out["mae_midpoint_deg_ci"] = _mean_ci(result.midpoint_error * deg)
    out["mae_median_deg"], out["mae_median_deg_ci"] = _mean_ci(result.median_error * deg)
    return out


def bound(cfg: StimulusConfig, samples: int = 8192, seed: int = 0, device="cpu", **options) -> dict:
    """Ideal-observer metrics, offset known and unknown, on ``samples`` fresh test stimuli.

    Every sample has its own phase offset whatever ``cfg.offset`` says; data come from a
    ``torch.Generator`` seeded with ``seed``. ``options`` go to :class:`IdealObserver`.
    """
    start = time.perf_counter()
    cfg = cfg.model_copy(update={"offset": "per_sample"})
    data = random_ipd_input_signal(samples, cfg, torch.Generator(device).manual_seed(seed))
    observer = IdealObserver(cfg, **options).to(device)
    unknown, known = [], []
    for sl in observer.chunks(samples):  # both observers share the likelihoods
        ell = observer.ear_log_likelihoods(data.spikes[sl])
        unknown.append(observer.log_posterior_from(ell))
        known.append(observer.log_posterior_from(ell, data.offset[sl]))
    result = {name: observer_metrics(torch.cat(log_post).exp(), data.ipd, cfg)
              for name, log_post in (("unknown_offset", unknown), ("known_offset", known))}
    return {**result, "samples": samples, "seconds": time.perf_counter() - start}
