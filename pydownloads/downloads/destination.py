"""Which file one attempt of a download writes, and the claim that keeps it its own."""

from __future__ import annotations

from pathlib import Path

import requests

from pydownloads.domain.errors import DestinationConflictError, DownloadCancelledError
from pydownloads.downloads.job import DownloadJob, Owner, PathClaims
from pydownloads.downloads.ondisk import part_holds
from pydownloads.infrastructure import sidecar
from pydownloads.infrastructure.paths import DEFAULT_NAME, parse_content_disposition


class Destination:
    """The final path of one attempt: predicted from the request, or named by the response;
    claimed in the worker's PathClaims (the claim is recorded in ``job.state``); a file
    already there kept or renamed around per ``on_existing``.

    One attempt, in the thread running it.
    """

    def __init__(self, job: DownloadJob, claims: PathClaims, url: str) -> None:
        self._job, self._claims, self._url = job, claims, url
        #: Resolved once per attempt (each attempt checks again: a link planted meanwhile is caught).
        self.predicted = job.request.predicted_destination()

    def load_saved_state(self) -> None:
        """Once per job: pick up a previous run's part file, if it is intact."""
        state = self._job.state
        if not state.look_for_saved_state():
            return
        predicted = self.predicted
        saved = sidecar.load(predicted, self._job.url) if predicted is not None else None
        if predicted is None or saved is None:
            return
        if not part_holds(predicted, saved):
            sidecar.delete(predicted)  # its part file is gone or short: the state is worthless
            return
        self.claim(predicted)
        state.resume_from(saved)

    def for_response(self, response: requests.Response) -> Path:
        """The path ``response`` goes to (its Content-Disposition name, else the URL's), claimed."""
        request = self._job.request
        name = request.filename
        if name is None:
            disposition = response.headers.get("Content-Disposition")
            name = parse_content_disposition(disposition) if disposition else None
        name = name or request.url_name or DEFAULT_NAME
        predicted = self.predicted
        final = predicted if predicted is not None and predicted.name == name else request.destination(name)
        self.claim(final)
        return final

    def rename(self, final: Path) -> Path:
        """``on_existing="rename"``: the first free ``name (n).ext`` beside ``final``, claimed."""
        for number in range(1, 10_000):
            candidate = final.with_name(f"{final.stem} ({number}){final.suffix}")
            if candidate.exists():
                continue
            try:
                self.claim(candidate)
            except DestinationConflictError:
                continue
            return candidate
        raise DestinationConflictError(f"no free name beside {final.name}", path=str(final),
                                       other_url="", url=self._url)

    def claim(self, final: Path) -> None:
        """Own ``final`` (giving up the path claimed before, if another).

        :raises DestinationConflictError: another download of the worker owns it.
        """
        state, url = self._job.state, self._job.url
        previous = state.claimed_path
        if final != previous:
            if previous is not None:
                self._claims.release(previous, url)
            self._claims.claim(final, url)
            state.claimed(final)

    def skip_existing(self, on_existing: str) -> Path | None:
        """``on_existing="skip"``: a file already under the expected name is kept, unasked."""
        if on_existing != "skip" or self._job.request.if_changed:
            return None
        predicted = self.predicted
        if predicted is None or not predicted.is_file():
            return None
        return self.unchanged(predicted)

    def unchanged(self, final: Path) -> Path:
        """Complete with the file as it is: nothing transferred.

        :raises DownloadCancelledError: a shutdown settled the download first.
        """
        self.claim(final)
        if not self._job.claim(Owner.WORKER):
            raise DownloadCancelledError("cancelled", url=self._url)
        self._job.state.mark_unchanged()
        return final
