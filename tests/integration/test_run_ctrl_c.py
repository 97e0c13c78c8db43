"""Ctrl-C in ``worker.run()`` (no signal handlers asked for) ends the script cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from helpers import default_sigint

ROOT = Path(__file__).resolve().parents[2]


def test_ctrl_c_in_plain_run_exits_cleanly(local_redis, tmp_path):
    script = tmp_path / "run_worker.py"
    script.write_text(
        textwrap.dedent(f"""
        from bullmq_sync import Worker
        worker = Worker("emails", lambda job: None, connection={local_redis.url!r})
        print("running", flush=True)
        worker.run()
        print("stopped", flush=True)
    """)
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "running"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert proc.returncode == 0 and out.strip() == "stopped"
