"""The report in a real browser: headless Chromium (Debian's ``chromium``, which ``.ci/run`` installs) opens
report.html, every image decodes and the console stays clean; a screenshot is kept in
``test-artefacts/`` for a person to look at."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from spikeloc.cli import main

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# flags for a closed network: no background connections, no first-run or sync traffic
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]
CHECK = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.images = images.length;
  document.body.dataset.broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).length;
});
</script></body>"""


def chromium(*args, profile):
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if CHROMIUM is None:
        if os.environ.get("SPIKELOC_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium package)")
        pytest.skip("chromium is not installed (apt install chromium)")
    out = tmp_path_factory.mktemp("runs") / "tiny"
    main(["train", "--preset", "tiny", "--out", str(out), "--quiet"])
    return out / "report.html"


def test_every_image_decodes_and_the_console_is_clean(report, tmp_path):
    checked = tmp_path / "checked.html"
    checked.write_text(report.read_text().replace("</body>", CHECK))
    result = chromium("--dump-dom", "--virtual-time-budget=10000", "--enable-logging=stderr", "--v=0",
                      checked.as_uri(), profile=tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    body = re.search(r'<body data-images="(\d+)" data-broken="(\d+)"', result.stdout)
    assert body, result.stdout[:500]
    images, broken = map(int, body.groups())
    assert images == 6 + 7 and broken == 0  # the run's figures (no membrane baseline) and the analysis's
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console


def test_screenshot_is_kept(report, tmp_path):
    ARTEFACTS.mkdir(exist_ok=True)
    shot = ARTEFACTS / "report.png"
    shot.unlink(missing_ok=True)
    result = chromium(f"--screenshot={shot}", "--window-size=1200,4000", report.as_uri(),
                      profile=tmp_path / "profile")
    assert result.returncode == 0 and shot.stat().st_size > 50_000, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
