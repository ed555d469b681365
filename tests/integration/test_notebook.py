"""Progress bars in a real Jupyter kernel: tqdm.auto must draw widgets there, not text."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from pydownloads.localserver import LocalServer, ResetAfter
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


def run_notebook(cells: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 ) -> tuple[list[list[dict[str, Any]]], dict[str, dict[str, Any]]]:
    """Run ``cells`` in a private kernel: each cell's outputs, and the widget models' saved state."""
    private_kernel(tmp_path / "jupyter", monkeypatch)
    notebook = nbformat.v4.new_notebook()
    notebook.cells.extend(nbformat.v4.new_code_cell(cell) for cell in cells)
    client = nbclient.NotebookClient(notebook, kernel_name=KERNEL, timeout=60, startup_timeout=60,
                                     store_widget_state=True, resources={"metadata": {"path": str(tmp_path)}})
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(client.setup_kernel())
        except Exception as error:  # only a kernel that cannot start is a reason to skip
            pytest.skip(f"a Jupyter kernel ({sys.executable} -m ipykernel_launcher) could not start: {error!r}")
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
    return [cell.outputs for cell in notebook.cells], client.widget_state


def bars_of(outputs: list[dict[str, Any]], state: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each tqdm widget a cell displayed, as its saved state says it ended: the text left and
    right of the bar (tqdm pads with figure spaces: made plain here), and the bar's value,
    max and style."""
    bars = []
    for output in outputs:
        model = output.get("data", {}).get(WIDGET, {}).get("model_id")
        if model is None:
            continue
        left, progress, right = (state[child.removeprefix("IPY_MODEL_")] for child in state[model]["children"])
        bars.append({"left": left["value"].replace("\u2007", " "), "right": right["value"].replace("\u2007", " "),
                     "value": progress["value"],
                     "max": progress["max"], "style": progress["bar_style"]})
    return bars


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


# Four files complete and one fails half-way; then, without `with` or shutdown(), a manager
# with progress=True is only joined.  The kernel's own widgets are read back from their state.
TRUTH = """\
import sys
sys.path.insert(0, {root!r})
from pydownloads import DownloadManager, RetryConfig
from pydownloads.progress import ProgressDisplay

NO_RETRY = RetryConfig(max_retries=0)
with DownloadManager({folder!r} + "/a", max_workers=2, retry_config=NO_RETRY) as manager:
    display = ProgressDisplay(manager.emitter, manager.tracker, min_interval=0.05)
    manager.add_to_queue({urls!r})
    manager.queue.join()
    display.close()
"""
JOINED = """\
manager = DownloadManager({folder!r} + "/b", max_workers=2, retry_config=NO_RETRY, progress=True)
manager.add_to_queue({urls!r})
print("joined", manager.join(timeout=30), manager.tracker.get_stats().completed)
"""


@pytest.mark.timeout(120)
def test_notebook_bars_end_as_the_downloads_did(
    local_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def files(prefix: str) -> list[str]:
        urls = [local_server.add_file(f"/{prefix}{i}.bin", payload(400_000, i), rate=1_000_000) for i in range(4)]
        bad = local_server.add_file(f"/{prefix}-bad.bin", payload(400_000), rate=1_000_000, accept_ranges=False)
        local_server.add_faults(f"/{prefix}-bad.bin", ResetAfter(300_000))
        return [*urls[:2], bad, *urls[2:]]

    outputs, state = run_notebook(
        [TRUTH.format(root=str(ROOT), folder=str(tmp_path / "downloads"), urls=files("t")),
         JOINED.format(folder=str(tmp_path / "downloads"), urls=files("j"))], tmp_path, monkeypatch)
    assert all(o.get("output_type") != "error" for cell in outputs for o in cell), outputs
    assert any("joined True 4" in o.get("text", "") for o in outputs[1]), outputs[1]
    for cell in outputs:
        overall, *files_bars = bars_of(cell, state)
        # The overall bar: its total right (the widget's max, not only tqdm's), completed
        # files only, the failure told, and never the green of success.
        assert (overall["value"], overall["max"]) == (4, 5), overall
        assert "4/5 files" in overall["left"] and "1 failed" in overall["left"], overall
        assert overall["style"] != "success", overall
        failed = [bar for bar in files_bars if "bad.bin" in bar["left"]]
        done = [bar for bar in files_bars if "bad.bin" not in bar["left"]]
        assert len(failed) == 1 and done, files_bars  # 400 ms a file: each gets a bar
        assert failed[0]["style"] == "danger" and "failed" in failed[0]["right"], failed
        for bar in done:  # full, in the normal colour: not a red bar at 98 %
            assert bar["value"] == bar["max"] == 400_000 and bar["style"] == "", bar
