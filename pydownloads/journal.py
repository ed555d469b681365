"""Reading a state file (the journal ``DownloadManager(state_file=...)`` keeps)::

    from pydownloads.journal import read_status

    status = read_status("downloads.db")
    print(status.counts)            # {"completed": 990, "failed": 10}
    for info in status.failures:
        print(info.url, info.error)

Reading never writes the file and is safe while a run is using it.
"""

from pydownloads.infrastructure.journal_format import JournalStatus, read_status

__all__ = ["JournalStatus", "read_status"]
