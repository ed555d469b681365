"""State of every download, safe to read from any thread while downloads run."""

from pydownloads.domain.models import DownloadStats
from pydownloads.tracking.tracker import DownloadTracker

__all__ = ["DownloadStats", "DownloadTracker"]
