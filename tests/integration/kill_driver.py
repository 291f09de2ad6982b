"""Run the ``spikeloc`` command line and SIGKILL this very process at a chosen moment.

    python kill_driver.py WHEN N -- spikeloc-arguments...

WHEN is one of
  batch       after the N-th training batch (mid-epoch; N = 1: before any checkpoint)
  checkpoint  after the N-th checkpoint is on disk (an epoch boundary)
  writing     during the N-th checkpoint write: its temporary file is written and flushed, not yet renamed
  save        during the write of weights.safetensors, after training
  figure      during the N-th figure write, after the results are saved

The kill is a real SIGKILL, sent by the process to itself at the patched point: nothing gets to
clean up, as when the machine's OOM killer or a cluster scheduler stops a job.
"""

import os
import signal
import sys

import spikeloc.runs.files as files
import spikeloc.training.loop as loop
from spikeloc.cli import main


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def count_down(n):
    left = [n]

    def hit() -> bool:
        left[0] -= 1
        return left[0] == 0

    return hit


def install(when: str, n: int) -> None:
    hit = count_down(n)
    if when == "batch":
        batches = loop.batches

        def killing_batches(*args, **kwargs):
            for item in batches(*args, **kwargs):
                if hit():
                    die()
                yield item

        loop.batches = killing_batches
        return
    replace = os.replace
    target = {"checkpoint": "checkpoint.pt", "writing": "checkpoint.pt", "save": "weights.safetensors",
              "figure": ".png"}[when]

    def killing_replace(src, dst):
        if str(dst).endswith(target) and hit():
            if when != "checkpoint":
                die()  # the temporary file is complete and flushed, the rename not done
            replace(src, dst)
            die()
        return replace(src, dst)

    files.os.replace = killing_replace


if __name__ == "__main__":
    when, n, sep, *argv = sys.argv[1:]
    assert sep == "--"
    install(when, int(n))
    main(argv)
