"""Regenerate screenshots/*.svg from a real run of the packaged demo (real engine, real
services, the dashboard in Textual's headless mode at 140x45, the main screen also at
80x24 and 200x60), and screenshots/dashboard.png from dashboard.svg for README (rendered by
headless Chromium, `apt-get install chromium`, else by librsvg's `rsvg-convert`):

    python scripts/screenshots.py            # with the dev venv's python; ~40 s

The worker is SIGKILLed once from outside (a crash, so there is an incident to show). The
dashboard's preferences (theme, pane sizes) are a fresh temporary file's: the defaults.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "screenshots"
SIZE = (140, 45)
OTHER_SIZES = ((80, 24), (200, 60))
PNG_WIDTH = 1400


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="tuisup-shots-"))
    os.environ.update(XDG_STATE_HOME=str(tmp / "state"), XDG_RUNTIME_DIR=str(tmp / "run"),
                      TUISUP_DEMO_PORT=str(free_port()), TUISUP_UI_PREFS=str(tmp / "ui.json"))
    sys.path.insert(0, str(ROOT))
    from tui_supervisor.config import load_config
    from tui_supervisor.demo import demo_config_path
    from tui_supervisor.engine.supervisor import Supervisor
    from tui_supervisor.metrics import attach_metrics
    from tui_supervisor.tui.app import SupervisorApp

    cfg = load_config(demo_config_path())
    cfg = replace(cfg, settings=replace(cfg.settings, log_dir=cfg.settings.state_dir / "logs"))
    sup = Supervisor(cfg)
    attach_metrics(sup)
    await sup.open()
    OUT.mkdir(exist_ok=True)
    try:
        app = SupervisorApp(sup)
        async with app.run_test(size=SIZE) as pilot:

            async def shot(name: str) -> None:
                await pilot.pause(1.2)
                app.save_screenshot(f"{name}.svg", str(OUT))
                print(f"wrote {OUT / name}.svg")

            await shot("waiting")  # web's probe starting, the worker waiting for it
            await pilot.pause(10)  # graphs get points, chatty gets chatty
            worker = sup.services["worker"]
            if worker.pid:
                os.kill(worker.pid, signal.SIGKILL)
            await pilot.pause(3)

            await shot("dashboard")
            await pilot.press("j", "j")  # worker
            await pilot.press("enter")
            await shot("detail")
            await pilot.press("enter", "a")
            await shot("merged-logs")
            await pilot.press("l", "slash", *"request", "enter")
            await shot("search")
            await pilot.press("escape", "l", "question_mark")
            await shot("help")
            await pilot.press("escape")
            await sup.reload()  # (the demo's file is unchanged: "nothing changed")
            await pilot.press("e")
            await shot("events")
        for w, h in OTHER_SIZES:
            app = SupervisorApp(sup)
            async with app.run_test(size=(w, h)) as pilot:
                await pilot.pause(2.5)  # (a snapshot or two: the trends have points)
                app.save_screenshot(f"dashboard-{w}x{h}.svg", str(OUT))
                print(f"wrote {OUT}/dashboard-{w}x{h}.svg")
    finally:
        await sup.close()
    png()



def png() -> None:
    """dashboard.png for README (a forge shows an SVG with webfonts unreliably): by
    headless Chromium where installed (it honours the SVG's cell widths, as a browser
    showing the SVG does), else by librsvg's rsvg-convert (it draws braille narrower)."""
    svg, out = OUT / "dashboard.svg", OUT / "dashboard.png"
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                    "google-chrome"))), None)
    if browser is not None:
        m = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg.read_text())
        w, h = (float(m.group(1)), float(m.group(2))) if m else (1400.0, 930.0)
        height = round(PNG_WIDTH * h / w)
        with tempfile.TemporaryDirectory() as tmp:
            page = Path(tmp) / "shot.html"
            page.write_text(f'<html><body style="margin:0;background:#000">'
                            f'<img src="{svg.as_uri()}" width="{PNG_WIDTH}" '
                            f'height="{height}"></body></html>')
            subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                            "--hide-scrollbars", "--force-device-scale-factor=1",
                            f"--user-data-dir={tmp}/profile",
                            f"--window-size={PNG_WIDTH},{height}", f"--screenshot={out}",
                            page.as_uri()], check=True, capture_output=True, timeout=120)
        print(f"wrote {out} (headless {Path(browser).name})")
        return
    tool = shutil.which("rsvg-convert")
    if tool is None:
        print("dashboard.png not rendered: no chromium or rsvg-convert (apt-get install "
              "chromium, or librsvg2-bin fonts-dejavu-core)", file=sys.stderr)
        return
    subprocess.run([tool, "-w", str(PNG_WIDTH), str(svg), "-o", str(out)], check=True)
    print(f"wrote {out} (rsvg-convert)")


if __name__ == "__main__":
    if sys.argv[1:] == ["--png"]:  # dashboard.png again from the SVG there is
        png()
    else:
        asyncio.run(main())
