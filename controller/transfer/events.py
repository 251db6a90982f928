"""What the transfer runner waits for on a node's Event Socket: background-job results and
channel hang-ups. The controller feeds every event of a node into one `EslEvents`.

`NodeLink.on_event` runs on greenswitch's single dispatch greenlet, so `feed` only stores
and wakes waiters; it never blocks.
"""

from __future__ import annotations

from collections import OrderedDict

import gevent
from gevent.event import AsyncResult, Event

EVENTS = ("BACKGROUND_JOB", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE")  # to subscribe
_HANGUPS = ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY")
_KEEP = 2000  # unclaimed job results / hang-ups remembered (a waiter may come late)


class EslEvents:
    """Job results by Job-UUID and hang-ups by channel UUID, for greenlets to wait on."""

    def __init__(self) -> None:
        self._jobs: dict[str, AsyncResult] = {}
        self._done_jobs: OrderedDict[str, str] = OrderedDict()
        self._watch: dict[str, tuple[Event, list]] = {}
        self._gone: OrderedDict[str, str] = OrderedDict()

    # --- the feed ---------------------------------------------------------------------------
    def feed(self, node: str, headers: dict, body: str | None) -> None:
        """NodeLink.on_event-compatible: remember what a waiter may need."""
        name = headers.get("Event-Name")
        if name == "BACKGROUND_JOB":
            job = headers.get("Job-UUID", "")
            waiter = self._jobs.pop(job, None)
            if waiter is not None:
                waiter.set(body or "")
            else:
                self._remember(self._done_jobs, job, body or "")
        elif name in _HANGUPS:
            uuid = headers.get("Unique-ID", "")
            cause = headers.get("Hangup-Cause") or headers.get("variable_hangup_cause") or ""
            if uuid in self._gone:
                return
            self._remember(self._gone, uuid, cause)
            entry = self._watch.get(uuid)
            if entry is not None:
                entry[1].append(cause)
                entry[0].set()

    @staticmethod
    def _remember(store: OrderedDict, key: str, value: str) -> None:
        store[key] = value
        while len(store) > _KEEP:
            store.popitem(last=False)

    # --- waiting ----------------------------------------------------------------------------
    def expect_job(self, job_uuid: str) -> AsyncResult:
        """Register interest in a job before sending it (its event may come at once)."""
        result = AsyncResult()
        if job_uuid in self._done_jobs:
            result.set(self._done_jobs.pop(job_uuid))
        else:
            self._jobs[job_uuid] = result
        return result

    def forget_job(self, job_uuid: str) -> None:
        self._jobs.pop(job_uuid, None)

    def hangup_event(self, uuid: str) -> Event:
        """An Event set when channel `uuid` hangs up (already set if it has)."""
        entry = self._watch.get(uuid)
        if entry is None:
            entry = self._watch[uuid] = (Event(), [])
            if uuid in self._gone:
                entry[1].append(self._gone[uuid])
                entry[0].set()
        return entry[0]

    def is_gone(self, uuid: str) -> bool:
        return uuid in self._gone

    def unwatch(self, uuid: str) -> None:
        self._watch.pop(uuid, None)

    def wait_any(self, job: AsyncResult, *hangups: Event, timeout: float) -> str | None:
        """Wait for the job's body or any hang-up; returns the body, or None when a
        hang-up (or the timeout) came first."""
        waiting = [job, *hangups]
        ready = gevent.wait(waiting, timeout=timeout, count=1)
        if job in ready or job.ready():
            return job.get()
        return None
