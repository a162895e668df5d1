"""Bulk actions on the address book: tag/untag, add to/remove from a group, set status, opt out,
delete — over a selection of ids or a filter, run as one background job with a count, live
progress, and an undo for tag and group changes.

``bulk_start`` validates and stores the job and enqueues ``bulk_run`` on commit. ``bulk_run`` claims
the job (queued → running, a conditional update: a redelivered task does nothing), resolves the
selection to contact ids once and applies the action in batches of ``BATCH_SIZE`` with a constant
number of statements per batch. The contacts a tag/group job really changed are recorded as
``BulkJobItem`` rows, so ``bulk_undo`` reverses exactly those (a contact tagged before the job keeps
its tag).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from django.db import transaction
from django.db.models import F, Subquery
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organization, User
from accounts.services import audit_record
from accounts.tenancy import scoped
from crm.errors import ApplicationError, Conflict, NotFound
from crm.live import org_group, push
from messaging.models import (
    BulkAction,
    BulkJob,
    BulkJobItem,
    Contact,
    ContactGroup,
    ContactGroupMember,
    ContactStatus,
    ContactTag,
    JobState,
    Tag,
)
from messaging.selectors import contact_filters_from_params, contact_list
from messaging.services.contacts import groups_get_or_create, tags_get_or_create

BATCH_SIZE = 1000
MAX_IDS = 10_000  # a larger selection is a filter ("apply to all matching")
UNDOABLE = (BulkAction.TAG, BulkAction.UNTAG, BulkAction.GROUP_ADD, BulkAction.GROUP_REMOVE)
TAG_ACTIONS = (BulkAction.TAG, BulkAction.UNTAG)
GROUP_ACTIONS = (BulkAction.GROUP_ADD, BulkAction.GROUP_REMOVE)
FILTER_KEYS = ("q", "tag", "group", "favorite", "status", "opted_out")
CONTACT_LIST_ARGS = {"query", "tag_ids", "group_ids", "favorite", "status", "opted_out", "custom"}


# --- Input --------------------------------------------------------------------------------------


def bulk_filters_clean(raw: Mapping) -> dict:
    """A filter as the contacts list names it (``q``, ``tag``, ``group``, ``favorite``, ``status``,
    ``opted_out``, ``cf.<key>``) → keyword arguments of ``selectors.contact_list``.

    ``raw`` is a QueryDict (the dashboard) or a JSON object (the API: values may be strings,
    numbers, booleans, null, or lists for ``tag`` and ``group``). Errors name ``filters.<key>``.
    """
    if isinstance(raw, QueryDict):
        params = raw
    else:
        if not isinstance(raw, Mapping):
            raise ApplicationError(
                _("Filters must be an object."), fields={"filters": [_("Expected an object.")]}
            )
        params = QueryDict(mutable=True)
        errors = {}
        for key, value in raw.items():
            if key not in FILTER_KEYS and not (isinstance(key, str) and key.startswith("cf.")):
                errors[f"filters.{key}"] = [_("Unknown filter.")]
                continue
            values = value if isinstance(value, list) else [value]
            texts = []
            for item in values:
                if item is None:
                    continue
                if isinstance(item, bool):
                    texts.append("true" if item else "false")
                elif isinstance(item, (int, str)):
                    texts.append(str(item))
                else:
                    errors[f"filters.{key}"] = [_("Use text, numbers or booleans.")]
            params.setlist(key, texts)
        if errors:
            raise ApplicationError(_("Some filters are not valid."), fields=errors)
    try:
        return contact_filters_from_params(params)
    except ApplicationError as exc:
        raise ApplicationError(
            exc.message, fields={f"filters.{k}": v for k, v in exc.fields.items()}
        ) from None


def _id_or_name(value) -> int | str:
    """An id (a JSON number) or a name (text). Digits typed as text are a name: "2024" is a tag."""
    if isinstance(value, bool) or value is None:
        raise ValueError
    if isinstance(value, int):
        return value
    name = " ".join(str(value).split())
    if not name:
        raise ValueError
    return name


def _resolve_tag(organization: Organization, action: str, value) -> Tag:
    try:
        wanted = _id_or_name(value)
    except ValueError:
        raise ApplicationError(
            _("Choose a tag."), fields={"params.tag": [_("Give a tag id or name.")]}
        ) from None
    if isinstance(wanted, int):
        tag = scoped(Tag, organization).filter(pk=wanted).first()
    elif action == BulkAction.TAG:  # tagging with a new name creates the tag
        tag = tags_get_or_create(organization=organization, names=[wanted])[0]
    else:
        tag = scoped(Tag, organization).filter(name__iexact=wanted).first()
    if tag is None:
        raise NotFound(_("No such tag."), fields={"params.tag": [_("No such tag.")]})
    return tag


def _resolve_group(organization: Organization, action: str, value) -> ContactGroup:
    try:
        wanted = _id_or_name(value)
    except ValueError:
        raise ApplicationError(
            _("Choose a group."), fields={"params.group": [_("Give a group id or name.")]}
        ) from None
    if isinstance(wanted, int):
        group = scoped(ContactGroup, organization).filter(pk=wanted).first()
    elif action == BulkAction.GROUP_ADD:  # adding to a new name creates the group
        group = groups_get_or_create(organization=organization, names=[wanted])[0]
    else:
        group = scoped(ContactGroup, organization).filter(name__iexact=wanted).first()
    if group is None:
        raise NotFound(_("No such group."), fields={"params.group": [_("No such group.")]})
    return group


def _clean_params(organization: Organization, action: str, params: Mapping) -> dict:
    """The job's stored parameters: ids resolved inside the organization, names kept for display."""
    if action in TAG_ACTIONS:
        tag = _resolve_tag(organization, action, params.get("tag"))
        return {"tag_id": tag.pk, "tag": tag.name}
    if action in GROUP_ACTIONS:
        group = _resolve_group(organization, action, params.get("group"))
        return {"group_id": group.pk, "group": group.name}
    if action == BulkAction.SET_STATUS:
        status = params.get("status")
        if status not in ContactStatus.values:
            raise ApplicationError(
                _("Choose a status."),
                fields={"params.status": [_("Choose active, blocked or invalid.")]},
            )
        return {"status": status}
    if action == BulkAction.OPT_OUT:
        source = " ".join(str(params.get("source") or "bulk").split())[:40] or "bulk"
        return {"source": source}
    return {}


# --- Start --------------------------------------------------------------------------------------


@transaction.atomic
def bulk_start(
    *,
    organization: Organization,
    actor: User | None,
    action: str,
    params: Mapping | None = None,
    ids: list[int] | None = None,
    filters: dict | None = None,
) -> BulkJob:
    """Validate and store a bulk job, then run it in the background (enqueued on commit).

    ``params``: ``tag`` (id or name; ``tag`` creates a missing name) for tag/untag, ``group`` (id or
    name; ``group_add`` creates) for group_add/group_remove, ``status`` for set_status, optional
    ``source`` for opt_out. Exactly one of ``ids`` (scoped to the organization: ids of other
    organizations or unknown ids simply don't count) and ``filters`` (keyword arguments of
    ``selectors.contact_list``, e.g. from ``bulk_filters_clean``). Another organization's tag or
    group id is ``NotFound``.
    """
    if action not in BulkAction.values:
        raise ApplicationError(
            _("Unknown bulk action."),
            fields={"action": [_("Choose one of: %s.") % ", ".join(BulkAction.values)]},
        )
    if (ids is None) == (filters is None):
        raise ApplicationError(
            _("Select contacts by ids or by a filter, not both."),
            code="selection",
            fields={"ids": [_("Give either ids or filters.")]},
        )
    if ids is not None:
        if len(ids) > MAX_IDS:
            raise ApplicationError(
                _("Too many ids: apply the action to a filter instead."),
                fields={"ids": [_("At most %(n)d.") % {"n": MAX_IDS}]},
            )
        wanted = {int(i) for i in ids if isinstance(i, int) and not isinstance(i, bool)}
        scoped_ids = sorted(
            scoped(Contact, organization).filter(pk__in=wanted).values_list("pk", flat=True)
        )
        selection, total = {"ids": scoped_ids}, len(scoped_ids)
    else:
        unknown = set(filters) - CONTACT_LIST_ARGS
        if unknown:
            raise ApplicationError(
                _("Some filters are not valid."),
                fields={f"filters.{k}": [_("Unknown filter.")] for k in sorted(unknown)},
            )
        selection = {"filters": filters}
        total = contact_list(organization=organization, **filters).count()
    job = BulkJob.objects.create(
        organization=organization,
        created_by=actor if actor is not None and actor.pk else None,
        action=action,
        params=_clean_params(organization, action, params or {}),
        selection=selection,
        total=total,
    )
    from messaging.tasks_bulk import bulk_run_task  # tasks import services, not the reverse

    transaction.on_commit(lambda: bulk_run_task.delay(job.pk))
    return job


# --- Run ----------------------------------------------------------------------------------------


def _selected_ids(job: BulkJob) -> list[int]:
    """The selection as contact ids, resolved once (a filter is evaluated here, not per batch)."""
    organization = job.organization
    if "ids" in job.selection:
        contacts = scoped(Contact, organization).filter(pk__in=job.selection["ids"])
    else:
        contacts = contact_list(organization=organization, **job.selection.get("filters", {}))
    return sorted(set(contacts.values_list("pk", flat=True)))


def _batches(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), BATCH_SIZE):
        yield ids[start : start + BATCH_SIZE]


def _lock_contacts(organization: Organization, ids: list[int]) -> list[int]:
    """The ids still existing in the organization, locked until the batch commits (so a contact
    deleted meanwhile is skipped instead of breaking an insert)."""
    return list(
        scoped(Contact, organization)
        .filter(pk__in=ids)
        .order_by("pk")
        .select_for_update()
        .values_list("pk", flat=True)
    )


def _record(job: BulkJob, contact_ids: list[int]) -> None:
    BulkJobItem.objects.bulk_create(
        [
            BulkJobItem(organization_id=job.organization_id, job=job, contact_id=cid)
            for cid in contact_ids
        ]
    )


def _apply_batch(job: BulkJob, batch: list[int]) -> int:
    """Apply the job's action to one batch; returns how many contacts it changed. A constant number
    of statements whatever the batch size."""
    organization, params = job.organization, job.params
    ids = _lock_contacts(organization, batch)
    if not ids:
        return 0
    if job.action in TAG_ACTIONS:
        links = scoped(ContactTag, organization).filter(tag_id=params["tag_id"], contact_id__in=ids)
        having = set(links.values_list("contact_id", flat=True))
        if job.action == BulkAction.TAG:
            changed = [cid for cid in ids if cid not in having]
            ContactTag.objects.bulk_create(
                [
                    ContactTag(organization=organization, tag_id=params["tag_id"], contact_id=cid)
                    for cid in changed
                ],
                ignore_conflicts=True,
            )
        else:
            changed = sorted(having)
            links.delete()
        _record(job, changed)
        return len(changed)
    if job.action in GROUP_ACTIONS:
        links = scoped(ContactGroupMember, organization).filter(
            group_id=params["group_id"], contact_id__in=ids
        )
        having = set(links.values_list("contact_id", flat=True))
        if job.action == BulkAction.GROUP_ADD:
            changed = [cid for cid in ids if cid not in having]
            ContactGroupMember.objects.bulk_create(
                [
                    ContactGroupMember(
                        organization=organization, group_id=params["group_id"], contact_id=cid
                    )
                    for cid in changed
                ],
                ignore_conflicts=True,
            )
        else:
            changed = sorted(having)
            links.delete()
        _record(job, changed)
        return len(changed)
    contacts = scoped(Contact, organization).filter(pk__in=ids)
    now = timezone.now()
    if job.action == BulkAction.SET_STATUS:
        return contacts.exclude(status=params["status"]).update(
            status=params["status"], updated_at=now
        )
    if job.action == BulkAction.OPT_OUT:  # an earlier opt-out keeps its date and source
        return contacts.filter(opted_out_at__isnull=True).update(
            opted_out_at=now, opted_out_source=params.get("source", "bulk"), updated_at=now
        )
    if job.action == BulkAction.DELETE:
        contacts.delete()  # cascades with one statement per related table
        return len(ids)
    raise ApplicationError(_("Unknown bulk action."))  # pragma: no cover - validated at start


def _progress(job: BulkJob) -> None:
    push(
        org_group(job.organization_id),
        "bulk.progress",
        {
            "job": job.pk,
            "action": job.action,
            "state": job.state,
            "total": job.total,
            "processed": job.processed,
            "affected": job.affected,
        },
    )


def bulk_run(job_id: int) -> BulkJob | None:
    """Run a queued job to the end (called by the task). A job not queued — already claimed by an
    earlier delivery, done or undone — is left alone and ``None`` returned.

    Each batch commits on its own with its progress, so the page shows the count moving; a failure
    leaves the batches done so far applied (and recorded for undo), the job ``failed``.
    """
    if not BulkJob.objects.filter(pk=job_id, state=JobState.QUEUED).update(state=JobState.RUNNING):
        return None
    job = BulkJob.objects.select_related("organization", "created_by").get(pk=job_id)
    try:
        ids = _selected_ids(job)
        job.total = len(ids)
        BulkJob.objects.filter(pk=job.pk).update(total=job.total)
        _progress(job)
        for batch in _batches(ids):
            with transaction.atomic():
                affected = _apply_batch(job, batch)
                BulkJob.objects.filter(pk=job.pk).update(
                    processed=F("processed") + len(batch), affected=F("affected") + affected
                )
                job.processed += len(batch)
                job.affected += affected
                _progress(job)
    except Exception as exc:
        BulkJob.objects.filter(pk=job.pk).update(
            state=JobState.FAILED, failure=str(exc)[:1000], finished_at=timezone.now()
        )
        job.state = JobState.FAILED
        _progress(job)
        raise
    with transaction.atomic():
        job.state, job.finished_at = JobState.DONE, timezone.now()
        job.save(update_fields=["state", "finished_at"])
        audit_record(
            organization=job.organization,
            action=f"contacts.bulk_{job.action}",
            actor=job.created_by,
            target=job,
            target_label=_job_label(job),
            data={"job_id": job.pk, "count": job.affected, "selected": job.total, **job.params},
        )
        _progress(job)
    return job


def _job_label(job: BulkJob) -> str:
    subject = job.params.get("tag") or job.params.get("group") or job.params.get("status") or ""
    label = str(BulkAction(job.action).label)
    return f"{label}: {subject}" if subject else label


# --- Undo ---------------------------------------------------------------------------------------


def bulk_undoable(job: BulkJob) -> bool:
    return job.action in UNDOABLE and job.state == JobState.DONE


@transaction.atomic
def bulk_undo(*, organization: Organization, job: BulkJob, actor: User | None) -> BulkJob:
    """Reverse exactly what a finished tag/untag/group job changed, once.

    Only the recorded contacts are changed back: a contact that had the tag before a tag job keeps
    it, one untagged by the job gets it again (if it still exists). Refused (``Conflict``) when the
    job is not done or already undone; refused for actions that cannot be undone.
    """
    if job.action not in UNDOABLE:
        raise ApplicationError(_("Only tag and group changes can be undone."), code="not_undoable")
    now = timezone.now()
    if (
        not scoped(BulkJob, organization)
        .filter(pk=job.pk, state=JobState.DONE)
        .update(state=JobState.UNDONE, undone_at=now)
    ):
        raise Conflict(
            _("This job was already undone.")
            if scoped(BulkJob, organization).filter(pk=job.pk, state=JobState.UNDONE).exists()
            else _("Only a finished job can be undone."),
            code="not_undoable",
        )
    job.state, job.undone_at = JobState.UNDONE, now
    items = scoped(BulkJobItem, organization).filter(job=job).values("contact_id")
    params = job.params
    if job.action == BulkAction.TAG:
        reversed_count, _unused = (
            scoped(ContactTag, organization)
            .filter(tag_id=params["tag_id"], contact_id__in=Subquery(items))
            .delete()
        )
    elif job.action == BulkAction.GROUP_ADD:
        reversed_count, _unused = (
            scoped(ContactGroupMember, organization)
            .filter(group_id=params["group_id"], contact_id__in=Subquery(items))
            .delete()
        )
    else:
        reversed_count = _restore_links(organization, job)
    audit_record(
        organization=organization,
        action=f"contacts.bulk_{job.action}_undone",
        actor=actor,
        target=job,
        target_label=_job_label(job),
        data={"job_id": job.pk, "count": reversed_count, **params},
    )
    _progress(job)
    return job


def _restore_links(organization: Organization, job: BulkJob) -> int:
    """Undo of untag / group_remove: give the recorded contacts (still existing) the link back."""
    if job.action == BulkAction.UNTAG:
        if not scoped(Tag, organization).filter(pk=job.params["tag_id"]).exists():
            raise Conflict(_("The tag was deleted since: nothing to restore."), code="gone")
    elif not scoped(ContactGroup, organization).filter(pk=job.params["group_id"]).exists():
        raise Conflict(_("The group was deleted since: nothing to restore."), code="gone")
    recorded = list(
        scoped(BulkJobItem, organization)
        .filter(job=job)
        .order_by("contact_id")
        .values_list("contact_id", flat=True)
    )
    restored = 0
    for batch in _batches(recorded):
        ids = _lock_contacts(organization, batch)
        if job.action == BulkAction.UNTAG:
            rows = [
                ContactTag(organization=organization, tag_id=job.params["tag_id"], contact_id=c)
                for c in ids
            ]
            ContactTag.objects.bulk_create(rows, ignore_conflicts=True)
        else:
            rows = [
                ContactGroupMember(
                    organization=organization, group_id=job.params["group_id"], contact_id=c
                )
                for c in ids
            ]
            ContactGroupMember.objects.bulk_create(rows, ignore_conflicts=True)
        restored += len(rows)
    return restored
