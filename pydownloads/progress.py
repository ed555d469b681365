"""Progress bars for downloads, in a terminal or a Jupyter notebook::

    from pydownloads.progress import ProgressDisplay

    with DownloadManager("downloads") as manager:
        display = ProgressDisplay(manager.emitter, manager.tracker)
        manager.add_to_queue(urls)
        manager.queue.join()
        display.close()

The implementation lives in :mod:`pydownloads.tracking.progress`, where the download
machinery may use it; this is its public path.
"""

from pydownloads.tracking.progress import DEFAULT_MAX_BARS, DEFAULT_MIN_INTERVAL, ProgressDisplay

__all__ = ["DEFAULT_MAX_BARS", "DEFAULT_MIN_INTERVAL", "ProgressDisplay"]
