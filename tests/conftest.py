import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # notebook_literal: the notebook's own loop, the oracle


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)
