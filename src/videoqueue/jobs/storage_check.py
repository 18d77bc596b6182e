"""Finding stored objects that no job owns: those under the prefix of a job id that has no
row, or of a job whose media was deleted or expired (say, a worker's upload that finished
just after the job was deleted). `videoqueue storage check` lists them and deletes them.

A queue request stores its inputs a moment before it creates its job's row, so an object of
a job id with no row counts only once it is older than a grace period: younger, it may be
the input of a job being accepted right now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from videoqueue.db.session import Database
from videoqueue.jobs import store
from videoqueue.jobs.states import GONE
from videoqueue.storage.base import Storage, StoredObject
from videoqueue.storage.layout import JOBS_PREFIX, job_id_of, job_prefix

NO_SUCH_JOB = "no such job"


@dataclass(frozen=True)
class UnownedObject:
    key: str
    job_id: str
    size: int
    why: str
    """`no such job`, `job deleted` or `job expired`."""


def _unowned_jobs(db: Database, job_ids: Collection[str]) -> dict[str, str]:
    """Why each of `job_ids` owns none of its objects; jobs that own theirs (queued,
    running, or ended with their media kept) are left out."""
    with db.read() as session:
        states = store.job_states(session, job_ids)
    return {
        job_id: NO_SUCH_JOB if state is None else f"job {state.lower()}"
        for job_id in job_ids
        if (state := states.get(job_id)) is None or state in GONE
    }


def unowned_objects(
    db: Database, storage: Storage, *, now: datetime, grace: timedelta
) -> list[UnownedObject]:
    """Every object of the jobs layout (`jobs/<id>/…`) that no job owns, by key; keys
    outside that layout are not videoqueue's and are left alone. A job id with no row owns
    nothing only when none of its objects was written within `grace` before `now`."""
    objects_of: dict[str, list[StoredObject]] = defaultdict(list)
    for stored in storage.objects(JOBS_PREFIX):
        job_id = job_id_of(stored.key)
        if job_id is not None:
            objects_of[job_id].append(stored)
    # Read after the listing: a job created while it ran is seen, and owns its objects.
    unowned = _unowned_jobs(db, objects_of)
    found = [
        UnownedObject(stored.key, job_id, stored.size, why)
        for job_id, why in unowned.items()
        if why != NO_SUCH_JOB or all(now - o.modified_at >= grace for o in objects_of[job_id])
        for stored in objects_of[job_id]
    ]
    return sorted(found, key=lambda unowned_object: unowned_object.key)


def delete_unowned(db: Database, storage: Storage, objects: Collection[UnownedObject]) -> int:
    """Delete the prefixes of the objects' jobs, those still unowned (a job created since the
    check owns its objects, and keeps them); how many prefixes were deleted."""
    still_unowned = _unowned_jobs(db, {o.job_id for o in objects})
    for job_id in still_unowned:
        storage.delete_prefix(job_prefix(job_id))
    return len(still_unowned)
