"""Which file one attempt of a download writes, and the claim that keeps it its own."""

from __future__ import annotations

from pathlib import Path

import requests

from pydownloads.domain.errors import DestinationConflictError, DownloadCancelledError
from pydownloads.downloads.job import DownloadJob, Owner, PathClaims, claim_free_name
from pydownloads.downloads.ondisk import part_holds
from pydownloads.infrastructure import sidecar
from pydownloads.infrastructure.paths import DEFAULT_NAME, parse_content_disposition


class Destination:
    """The final path of one attempt: predicted from the request, or named by the response;
    claimed in the worker's PathClaims (the claim is recorded in ``job.state``); a file
    already there kept or renamed around per ``on_existing``.

    Between downloads of one run: a name known before the response (``filename``, or the
    URL's) was claimed when the download was queued (:class:`NameClaims`: the first queued
    keeps it); a name only the response's Content-Disposition gives goes to the first
    download whose response arrives, the later ones getting ``name (n).ext`` with
    ``on_existing="rename"``, else a :class:`DestinationConflictError`.

    One attempt, in the thread running it.

    :raises DestinationConflictError: a download queued before holds this one's name.
    """

    def __init__(self, job: DownloadJob, claims: PathClaims, url: str) -> None:
        if job.refused is not None:
            raise job.refused
        self._job, self._claims, self._url = job, claims, url
        #: Resolved once per attempt (each attempt checks again: a link planted meanwhile is caught).
        renamed = job.renamed  # its name was taken by a download queued before
        request, known = job.request, job.state.claimed_path  # the Path claimed at queueing, reused
        self.predicted = request.destination(renamed.name, known) if renamed else request.predicted_destination(known)

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

    def for_response(self, response: requests.Response, *, rename: bool = False) -> Path:
        """The path ``response`` goes to (its Content-Disposition name, else the predicted
        one), claimed; with ``rename``, a name another download of the run owns gives
        ``name (n).ext``.

        :raises DestinationConflictError: another download of the run owns it (not ``rename``).
        """
        request = self._job.request
        name = None
        if request.filename is None:
            disposition = response.headers.get("Content-Disposition")
            name = parse_content_disposition(disposition) if disposition else None
        predicted = self.predicted
        if predicted is not None and (name is None or name == predicted.name):
            final = predicted
        else:
            final = request.destination(name or DEFAULT_NAME)
        try:
            self.claim(final)
        except DestinationConflictError:
            if not rename:
                raise
            return self.rename(final)
        return final

    def rename(self, final: Path) -> Path:
        """``on_existing="rename"``: the first free ``name (n).ext`` beside ``final``, claimed."""
        state = self._job.state
        previous = state.claimed_path
        candidate = claim_free_name(self._claims, final, self._url)
        if previous is not None and previous != candidate:
            self._claims.release(previous, self._url)
        state.claimed(candidate)
        return candidate

    def claim(self, final: Path) -> None:
        """Own ``final`` (giving up the path claimed before, if another).

        :raises DestinationConflictError: another download of the worker owns it.
        """
        state, url = self._job.state, self._job.url
        previous = state.claimed_path
        if final is not previous and final != previous:
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
