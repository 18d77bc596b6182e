"""Finding stored objects that no job owns: those under the prefix of a job id that has no
row, or of a job whose media was deleted or expired (say, a worker's upload that finished
just after the job was deleted). `videoqueue storage check` lists them and deletes them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass

from videoqueue.db.session import Database
from videoqueue.jobs import store
from videoqueue.jobs.states import GONE
from videoqueue.storage.base import ObjectNotFound, Storage
from videoqueue.storage.layout import JOBS_PREFIX, job_id_of, job_prefix


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
        job_id: "no such job" if state is None else f"job {state.lower()}"
        for job_id in job_ids
        if (state := states.get(job_id)) is None or state in GONE
    }


def unowned_objects(db: Database, storage: Storage) -> list[UnownedObject]:
    """Every object of the jobs layout (`jobs/<id>/…`) that no job owns, by key; keys
    outside that layout are not videoqueue's and are left alone."""
    keys_of: dict[str, list[str]] = defaultdict(list)
    for key in storage.keys(JOBS_PREFIX):
        job_id = job_id_of(key)
        if job_id is not None:
            keys_of[job_id].append(key)
    # Read after the listing: a job created while it ran is seen, and owns its objects.
    unowned = _unowned_jobs(db, keys_of)
    found = []
    for job_id, why in unowned.items():
        for key in keys_of[job_id]:
            try:
                found.append(UnownedObject(key, job_id, storage.size(key), why))
            except ObjectNotFound:
                continue  # removed since it was listed
    return sorted(found, key=lambda unowned_object: unowned_object.key)


def delete_unowned(db: Database, storage: Storage, objects: Collection[UnownedObject]) -> int:
    """Delete the prefixes of the objects' jobs, those still unowned (a job created since the
    check owns its objects, and keeps them); how many prefixes were deleted."""
    still_unowned = _unowned_jobs(db, {o.job_id for o in objects})
    for job_id in still_unowned:
        storage.delete_prefix(job_prefix(job_id))
    return len(still_unowned)
