"""The command line as the tests call it: ``run_cli(*args, capsys=capsys)`` -> (status, stdout, stderr)."""

import pytest

from spikeloc.cli import main


def run_cli(*args, capsys):
    with pytest.raises(SystemExit) as e:
        main(list(args))
        raise SystemExit(0)  # main returns on success
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err
