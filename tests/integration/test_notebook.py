"""Progress bars in a real Jupyter kernel: tqdm.auto must draw widgets there, not text."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import pytest

from pydownloads.localserver import LocalServer
from tests.integration.helpers import payload

nbformat = pytest.importorskip("nbformat", reason="nbformat is in requirements-dev.txt")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in requirements-dev.txt")
pytest.importorskip("ipykernel", reason="ipykernel is in requirements-dev.txt")
pytest.importorskip("ipywidgets", reason="ipywidgets is in requirements-dev.txt")

ROOT = Path(__file__).resolve().parents[2]
KERNEL = "pydownloads-test"
WIDGET = "application/vnd.jupyter.widget-view+json"

CELL = """\
import sys
sys.path.insert(0, {root!r})
from pydownloads import DownloadManager
from pydownloads.progress import ProgressDisplay

with DownloadManager({folder!r}, max_workers=2) as manager:
    display = ProgressDisplay(manager.emitter, manager.tracker, min_interval=0.05)
    manager.add_to_queue({urls!r})
    manager.queue.join()
    display.close()
stats = manager.tracker.get_stats()
print("completed", stats.completed, "of", stats.total)
"""


def private_kernel(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel spec for this very Python, found through JUPYTER_PATH; nothing of the user's is touched."""
    spec = home / "share" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "pydownloads tests", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(home / "share"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(home / "runtime"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("IPYTHONDIR", str(home / "ipython"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


@pytest.mark.timeout(90)
def test_progress_in_a_notebook_draws_tqdm_widgets(
    local_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urls = [local_server.add_file(f"/nb{i}.bin", payload(300_000, i), rate=2_000_000) for i in range(3)]
    private_kernel(tmp_path / "jupyter", monkeypatch)
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(
        CELL.format(root=str(ROOT), folder=str(tmp_path / "downloads"), urls=urls)))
    client = nbclient.NotebookClient(notebook, kernel_name=KERNEL, timeout=60, startup_timeout=60,
                                     resources={"metadata": {"path": str(tmp_path)}})
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(client.setup_kernel())
        except Exception as error:  # only a kernel that cannot start is a reason to skip
            pytest.skip(f"a Jupyter kernel ({sys.executable} -m ipykernel_launcher) could not start: {error!r}")
        client.execute_cell(notebook.cells[0], 0)
    outputs = notebook.cells[0].outputs
    assert any(o.get("name") == "stdout" and "completed 3 of 3" in o.get("text", "") for o in outputs), outputs
    widgets = [o for o in outputs if WIDGET in o.get("data", {})]
    assert widgets, f"no tqdm widget among the outputs: {outputs}"
    assert all(o.get("output_type") != "error" for o in outputs)
    # bars went to widgets, not as text to stderr
    assert not any("files" in o.get("text", "") for o in outputs if o.get("name") == "stderr")
