"""Every write path of accounts: sign-up, organizations, members, invitations, API keys, audit.

Functions are keyword-only and take the organization and the acting user explicitly. Each one runs
in one transaction, raises ``crm.errors.ApplicationError`` for anything a user did wrong, and records
security-relevant actions in the audit log.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Model
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from accounts.models import (
    ROLE_RANK,
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Organization,
    Role,
    User,
    role_at_least,
)
from accounts.tenancy import scoped
from crm.errors import ApplicationError, Conflict, Forbidden
from crm.live import access_changed

API_KEY_PREFIX = "prl_"
RESERVED_SLUGS = {"admin", "api", "new", "static", "media", "ws", "o"}


def _sha256(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


# --- Audit --------------------------------------------------------------------------------------


def audit_record(
    *,
    organization: Organization | None,
    action: str,
    actor: User | None = None,
    api_key: ApiKey | None = None,
    target: Model | None = None,
    target_label: str = "",
    data: dict | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        organization=organization,
        actor=actor if actor is not None and actor.pk else None,
        actor_label=(actor.email if actor is not None and actor.pk else "")
        or (f"API key {api_key.prefix}" if api_key else ""),
        api_key=api_key,
        action=action,
        target_type=target._meta.model_name if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=(target_label or str(target))[:200] if target is not None else target_label,
        data=data or {},
        ip_address=ip_address,
    )


# --- Organizations ------------------------------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "org"
    if base in RESERVED_SLUGS:
        base = f"{base}-org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def organization_create(
    *,
    name: str,
    owner: User,
    slug: str | None = None,
    timezone_name: str = "UTC",
    default_country: str | None = None,
) -> Organization:
    name = (name or "").strip()
    if not name:
        raise ApplicationError(
            _("An organization needs a name."), fields={"name": [_("Required.")]}
        )
    if slug:
        slug = slugify(slug)
        if slug in RESERVED_SLUGS or Organization.objects.filter(slug=slug).exists():
            raise Conflict(_("That address is taken."), fields={"slug": [_("Already in use.")]})
    organization = Organization(
        name=name,
        slug=slug or _unique_slug(name),
        timezone=timezone_name,
        default_country=(default_country or settings.PARLEY_DEFAULT_COUNTRY).upper(),
    )
    _validate(organization)
    organization.save()
    Membership.objects.create(organization=organization, user=owner, role=Role.OWNER)
    audit_record(
        organization=organization, action="organization.created", actor=owner, target=organization
    )
    return organization


UPDATABLE_ORGANIZATION_FIELDS = ("name", "timezone", "default_country")


@transaction.atomic
def organization_update(
    *, organization: Organization, actor: User, via_key: ApiKey | None = None, data: dict
) -> Organization:
    changed = {}
    for field in UPDATABLE_ORGANIZATION_FIELDS:
        if field in data and data[field] != getattr(organization, field):
            changed[field] = [getattr(organization, field), data[field]]
            setattr(organization, field, data[field])
    _validate(organization, exclude=["slug"])
    if changed:
        organization.save(update_fields=list(changed))
        audit_record(
            organization=organization,
            action="organization.updated",
            actor=actor,
            api_key=via_key,
            target=organization,
            data={"changes": changed},
        )
    return organization


def _validate(instance: Model, exclude: list[str] | None = None) -> None:
    try:
        instance.full_clean(exclude=exclude, validate_unique=False)
    except ValidationError as exc:
        raise ApplicationError(
            _("Some fields are not valid."),
            fields={k: [str(m) for m in v] for k, v in exc.message_dict.items()},
        ) from None


# --- Sign-up ------------------------------------------------------------------------------------


@transaction.atomic
def signup(
    *, email: str, password: str, name: str, organization_name: str
) -> tuple[User, Organization]:
    if not settings.PARLEY_SIGNUP_ENABLED:
        raise Forbidden(_("Sign-up is disabled on this installation."), code="signup_disabled")
    user = user_create(email=email, password=password, name=name)
    organization = organization_create(name=organization_name, owner=user)
    return user, organization


def user_create(*, email: str, password: str, name: str = "", is_staff: bool = False) -> User:
    email = (email or "").strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict(
            _("An account with this email already exists."),
            fields={"email": [_("Already registered.")]},
        )
    candidate = User(email=email, name=name.strip())
    try:
        candidate.full_clean(exclude=["password"], validate_unique=False)
        validate_password(password, candidate)
    except ValidationError as exc:
        fields = getattr(exc, "message_dict", None) or {"password": [str(m) for m in exc.messages]}
        raise ApplicationError(_("Some fields are not valid."), fields=fields) from None
    try:
        with transaction.atomic():
            return User.objects.create_user(
                email, password, name=name.strip(), is_staff=is_staff, is_superuser=is_staff
            )
    except IntegrityError:
        raise Conflict(_("An account with this email already exists.")) from None


# --- Members ------------------------------------------------------------------------------------


def _require(actor_role: str, minimum: str) -> None:
    if not role_at_least(actor_role, minimum):
        raise Forbidden(_("Your role does not allow this."))


def _active_owner_count(organization: Organization) -> int:
    """Active owners, rows locked: two owners demoting each other at once cannot both succeed."""
    owners = Membership.objects.select_for_update().filter(
        organization=organization, role=Role.OWNER, is_active=True
    )
    return len(owners.values_list("pk", flat=True))


def _actor_role(organization: Organization, actor: User, via_key: ApiKey | None = None) -> str:
    """What the actor may do here: their live role, and no more than the key they act through."""
    role = (
        scoped(Membership, organization)
        .filter(user=actor, is_active=True)
        .values_list("role", flat=True)
        .first()
        or ""
    )
    return _bounded_by_key(role, organization, via_key)


def _bounded_by_key(role: str, organization: Organization, via_key: ApiKey | None) -> str:
    """``role`` (a member's live role), no more than the key it acts through allows."""
    if via_key is None:
        return role
    if via_key.organization_id != organization.pk or via_key.revoked_at is not None:
        return ""
    return min(role, via_key.role, key=lambda r: ROLE_RANK.get(r, 0))


@transaction.atomic
def member_set_role(
    *,
    organization: Organization,
    membership: Membership,
    role: str,
    actor: User,
    via_key: ApiKey | None = None,
) -> Membership:
    actor_role = _actor_role(organization, actor, via_key)
    _require(actor_role, Role.ADMIN)
    if role not in ROLE_RANK:
        raise ApplicationError(
            _("Unknown role."), fields={"role": [_("Choose viewer, agent, admin or owner.")]}
        )
    if membership.user_id == actor.pk:
        raise Forbidden(_("You cannot change your own role."), code="own_role")
    if not role_at_least(actor_role, membership.role) or not role_at_least(actor_role, role):
        raise Forbidden(_("You cannot give or change a role above your own."))
    if (
        membership.role == Role.OWNER
        and role != Role.OWNER
        and _active_owner_count(organization) <= 1
    ):
        raise ApplicationError(_("The last owner cannot be demoted."), code="last_owner")
    previous = membership.role
    if previous == role:
        return membership
    membership.role = role
    membership.save(update_fields=["role"])
    _cap_api_keys(organization=organization, user_id=membership.user_id, role=role, actor=actor)
    access_changed(organization.pk, membership.user_id)
    audit_record(
        organization=organization,
        action="member.role_changed",
        actor=actor,
        api_key=via_key,
        target=membership,
        target_label=membership.user.email,
        data={"from": previous, "to": role},
    )
    return membership


def _cap_api_keys(*, organization: Organization, user_id: int, role: str, actor: User) -> None:
    """Keys a member created never outrank them: demotion lowers them too."""
    too_high = [r for r, rank in ROLE_RANK.items() if rank > ROLE_RANK[role]]
    scoped(ApiKey, organization).filter(
        created_by_id=user_id, revoked_at__isnull=True, role__in=too_high
    ).update(role=role)


def _revoke_keys_of(
    *,
    organization: Organization,
    user_id: int,
    actor: User,
    via_key: ApiKey | None = None,
    reason: str,
) -> None:
    for key in scoped(ApiKey, organization).filter(created_by_id=user_id, revoked_at__isnull=True):
        api_key_revoke(
            organization=organization, api_key=key, actor=actor, via_key=via_key, reason=reason
        )


def _guard_member_change(
    organization: Organization, membership: Membership, actor: User, via_key: ApiKey | None = None
) -> None:
    actor_role = _actor_role(organization, actor, via_key)
    if membership.user_id != actor.pk:
        _require(actor_role, Role.ADMIN)
        if not role_at_least(actor_role, membership.role):
            raise Forbidden(_("You cannot change a member whose role is above your own."))
    if (
        membership.role == Role.OWNER
        and membership.is_active
        and _active_owner_count(organization) <= 1
    ):
        raise ApplicationError(
            _("The last owner cannot leave or be removed; transfer ownership first."),
            code="last_owner",
        )


@transaction.atomic
def member_deactivate(
    *,
    organization: Organization,
    membership: Membership,
    actor: User,
    via_key: ApiKey | None = None,
) -> Membership:
    _guard_member_change(organization, membership, actor, via_key)
    if membership.is_active:
        membership.is_active = False
        access_changed(organization.pk, membership.user_id)
        membership.save(update_fields=["is_active"])
        _revoke_keys_of(
            organization=organization,
            user_id=membership.user_id,
            actor=actor,
            via_key=via_key,
            reason="member deactivated",
        )
        audit_record(
            organization=organization,
            action="member.deactivated",
            actor=actor,
            api_key=via_key,
            target=membership,
            target_label=membership.user.email,
        )
    return membership


@transaction.atomic
def member_reactivate(
    *,
    organization: Organization,
    membership: Membership,
    actor: User,
    via_key: ApiKey | None = None,
) -> Membership:
    actor_role = _actor_role(organization, actor, via_key)
    _require(actor_role, Role.ADMIN)
    if not role_at_least(actor_role, membership.role):
        raise Forbidden(_("You cannot change a member whose role is above your own."))
    if not membership.is_active:
        membership.is_active = True
        membership.save(update_fields=["is_active"])
        audit_record(
            organization=organization,
            action="member.reactivated",
            actor=actor,
            api_key=via_key,
            target=membership,
            target_label=membership.user.email,
        )
    return membership


@transaction.atomic
def member_remove(
    *,
    organization: Organization,
    membership: Membership,
    actor: User,
    via_key: ApiKey | None = None,
) -> None:
    _guard_member_change(organization, membership, actor, via_key)
    _revoke_keys_of(
        organization=organization,
        user_id=membership.user_id,
        actor=actor,
        via_key=via_key,
        reason="member removed",
    )
    audit_record(
        organization=organization,
        action="member.left" if membership.user_id == actor.pk else "member.removed",
        actor=actor,
        api_key=via_key,
        target=membership,
        target_label=membership.user.email,
        data={"role": membership.role},
    )
    access_changed(organization.pk, membership.user_id)
    membership.delete()


@transaction.atomic
def ownership_transfer(
    *, organization: Organization, new_owner: Membership, actor: User, via_key: ApiKey | None = None
) -> Membership:
    """The acting owner hands the organization to another active member and becomes an admin."""
    actor_membership = (
        Membership.objects.select_for_update()
        .filter(organization=organization, user=actor, is_active=True)
        .first()
    )
    if actor_membership is None or _actor_role(organization, actor, via_key) != Role.OWNER:
        raise Forbidden(_("Only an owner can transfer ownership."))
    if new_owner.user_id == actor.pk:
        raise ApplicationError(_("You already own this organization."), code="same_owner")
    if not new_owner.is_active:
        raise ApplicationError(
            _("Ownership can only go to an active member."), code="inactive_member"
        )
    previous = new_owner.role
    new_owner.role = Role.OWNER
    new_owner.save(update_fields=["role"])
    actor_membership.role = Role.ADMIN
    actor_membership.save(update_fields=["role"])
    _cap_api_keys(organization=organization, user_id=actor.pk, role=Role.ADMIN, actor=actor)
    audit_record(
        organization=organization,
        action="organization.ownership_transferred",
        actor=actor,
        api_key=via_key,
        target=new_owner,
        target_label=new_owner.user.email,
        data={"previous_role": previous},
    )
    return new_owner


@transaction.atomic
def organization_delete(
    *, organization: Organization, actor: User, via_key: ApiKey | None = None, confirm: str
) -> None:
    """Delete the organization and everything it owns. Owners only; ``confirm`` must be its slug.

    The audit trail of the deletion outlives it: one event with no organization, naming it.
    """
    if _actor_role(organization, actor, via_key) != Role.OWNER:
        raise Forbidden(_("Only an owner can delete the organization."))
    if (confirm or "").strip() != organization.slug:
        raise ApplicationError(
            _("Type the organization's address (%(slug)s) to confirm.")
            % {"slug": organization.slug},
            fields={"confirm": [_("Does not match.")]},
        )
    audit_record(
        organization=None,
        action="organization.deleted",
        actor=actor,
        api_key=via_key,
        target_label=organization.name,
        data={
            "organization_id": organization.pk,
            "slug": organization.slug,
            "name": organization.name,
        },
    )
    User.objects.filter(last_organization=organization).update(last_organization=None)
    access_changed(organization.pk)
    organization.delete()


# --- Invitations --------------------------------------------------------------------------------


@transaction.atomic
def invitation_create(
    *,
    organization: Organization,
    email: str,
    role: str,
    actor: User,
    via_key: ApiKey | None = None,
    request_base: str | None = None,
) -> tuple[Invitation, str]:
    """Create (or renew) an invitation and email its link. Returns it and the raw token."""
    actor_role = _actor_role(organization, actor, via_key)
    _require(actor_role, Role.ADMIN)
    email = (email or "").strip().lower()
    if role not in ROLE_RANK:
        raise ApplicationError(
            _("Unknown role."), fields={"role": [_("Choose viewer, agent, admin or owner.")]}
        )
    if not role_at_least(actor_role, role):
        raise Forbidden(_("You cannot invite someone with a role above your own."))
    probe = Invitation(
        organization=organization,
        email=email,
        role=role,
        token_hash="x",  # noqa: S106 - a placeholder for validation only
        expires_at=timezone.now(),
    )
    _validate(probe, exclude=["invited_by", "accepted_by"])
    if scoped(Membership, organization).filter(user__email__iexact=email).exists():
        raise Conflict(
            _("%(email)s is already a member.") % {"email": email},
            fields={"email": [_("Already a member.")]},
        )
    now = timezone.now()
    scoped(Invitation, organization).filter(
        email=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token_hash=_sha256(token),
        invited_by=actor,
        expires_at=now + timedelta(days=settings.PARLEY_INVITATION_DAYS),
    )
    audit_record(
        organization=organization,
        action="invitation.created",
        actor=actor,
        api_key=via_key,
        target=invitation,
        data={"role": role},
    )
    link = (request_base or settings.SITE_URL).rstrip("/") + reverse(
        "invitation-accept", args=[token]
    )
    transaction.on_commit(lambda: _send_invitation(invitation, link, actor))
    return invitation, token


def _send_invitation(invitation: Invitation, link: str, actor: User) -> None:
    subject = _("%(who)s invited you to %(org)s on Parley") % {
        "who": actor.display_name,
        "org": invitation.organization.name,
    }
    body = _(
        "You are invited to join %(org)s as %(role)s.\n\nAccept here (valid until %(until)s):\n%(link)s\n"
    ) % {
        "org": invitation.organization.name,
        "role": invitation.get_role_display(),
        "until": invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        "link": link,
    }
    send_mail(subject, body, None, [invitation.email])


def invitation_by_token(token: str) -> Invitation | None:
    return (
        Invitation.objects.select_related("organization")
        .filter(token_hash=_sha256(token or ""))
        .first()
    )


@transaction.atomic
def invitation_revoke(
    *,
    organization: Organization,
    invitation: Invitation,
    actor: User,
    via_key: ApiKey | None = None,
) -> Invitation:
    _require(_actor_role(organization, actor, via_key), Role.ADMIN)
    if invitation.state != "pending":
        raise ApplicationError(_("Only a pending invitation can be revoked."), code="not_pending")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        organization=organization,
        action="invitation.revoked",
        actor=actor,
        api_key=via_key,
        target=invitation,
    )
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    invitation = invitation_by_token(token)
    if invitation is None:
        raise ApplicationError(_("This invitation link is not valid."), code="invalid_invitation")
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    state = invitation.state
    if state != "pending":
        messages = {
            "accepted": _("This invitation has already been used."),
            "revoked": _("This invitation was withdrawn."),
            "expired": _("This invitation has expired; ask for a new one."),
        }
        raise ApplicationError(messages[state], code=f"invitation_{state}")
    if invitation.email.lower() != user.email.lower():
        raise Forbidden(
            _("This invitation was sent to %(email)s. Sign in with that address to accept it.")
            % {"email": invitation.email},
            code="invitation_other_email",
        )
    organization = invitation.organization
    membership, created = Membership.objects.get_or_create(
        organization=organization, user=user, defaults={"role": invitation.role}
    )
    if not created and not membership.is_active:
        raise Forbidden(
            _("Your membership here was deactivated; ask an admin."), code="deactivated"
        )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        organization=organization,
        action="invitation.accepted",
        actor=user,
        target=membership,
        target_label=user.email,
        data={"role": membership.role},
    )
    return membership


@transaction.atomic
def invitations_expire() -> int:
    """Housekeeping for beat: nothing to change (state is derived); old rows are pruned after 90 days."""
    cutoff = timezone.now() - timedelta(days=90)
    deleted, _unused = Invitation.objects.filter(
        expires_at__lt=cutoff, accepted_at__isnull=True
    ).delete()
    return deleted


# --- API keys -----------------------------------------------------------------------------------


@transaction.atomic
def api_key_create(
    *, organization: Organization, name: str, role: str, actor: User, via_key: ApiKey | None = None
) -> tuple[ApiKey, str]:
    """Create a key. The raw key is returned here once and never stored."""
    actor_role = _actor_role(organization, actor, via_key)
    _require(actor_role, Role.ADMIN)
    name = (name or "").strip()
    if not name:
        raise ApplicationError(_("Give the key a name."), fields={"name": [_("Required.")]})
    if len(name) > 100:
        raise ApplicationError(
            _("That name is too long."), fields={"name": [_("At most 100 characters.")]}
        )
    if role not in ROLE_RANK:
        raise ApplicationError(
            _("Unknown role."), fields={"role": [_("Choose viewer, agent, admin or owner.")]}
        )
    if not role_at_least(actor_role, role):
        raise Forbidden(
            _("A key cannot have a role above your own."), fields={"role": [_("Above your role.")]}
        )
    prefix = API_KEY_PREFIX + secrets.token_hex(4)
    raw = f"{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        organization=organization,
        name=name,
        prefix=prefix,
        key_hash=_sha256(raw),
        role=role,
        created_by=actor,
    )
    audit_record(
        organization=organization,
        action="api_key.created",
        actor=actor,
        api_key=via_key,
        target=key,
        data={"role": role},
    )
    return key, raw


@transaction.atomic
def api_key_revoke(
    *,
    organization: Organization,
    api_key: ApiKey,
    actor: User,
    via_key: ApiKey | None = None,
    reason: str = "",
) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(
            organization=organization,
            action="api_key.revoked",
            actor=actor,
            api_key=via_key,
            target=api_key,
            data={"reason": reason} if reason else None,
        )
    return api_key


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The usable key for ``raw``, or None. A key acts with ``effective_role``: its own role, bounded
    by its creator's *live* membership, so a key dies with its creator's access however that access
    was changed (a service, the admin, a script). Records use at most once a minute per key."""
    if not raw or not raw.startswith(API_KEY_PREFIX) or len(raw) > 200:
        return None
    # One query for every request: the key, its organization, its creator and the creator's
    # active membership of it, whose role ``_actor_role`` would read (no such membership, no
    # row: no role, refused).
    keys = (
        ApiKey.objects.select_related("organization", "created_by")
        .filter(
            key_hash=_sha256(raw),
            revoked_at__isnull=True,
            organization__memberships__user=F("created_by"),
            organization__memberships__is_active=True,
        )
        .annotate(member_role=F("organization__memberships__role"))
        .order_by()  # one at most (a unique hash): ordering it cost a third of the query
    )
    key = next(iter(keys[:1]), None)
    if key is None or key.created_by is None or not key.created_by.is_active:
        return None
    live_role = _bounded_by_key(key.member_role, key.organization, key)
    if not live_role:
        return None
    key.effective_role = live_role
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


# --- Login throttling ---------------------------------------------------------------------------


def _throttle_keys(email: str, ip: str | None) -> tuple[str, str]:
    return f"login-fail:acct:{_sha256(email.strip().lower())}", f"login-fail:ip:{ip or 'unknown'}"


def login_blocked(*, email: str, ip: str | None) -> bool:
    account_key, ip_key = _throttle_keys(email, ip)
    values = cache.get_many([account_key, ip_key])
    return (
        values.get(account_key, 0) >= settings.PARLEY_LOGIN_MAX_FAILURES_PER_ACCOUNT
        or values.get(ip_key, 0) >= settings.PARLEY_LOGIN_MAX_FAILURES_PER_IP
    )


def login_failed(*, email: str, ip: str | None) -> None:
    timeout = settings.PARLEY_LOGIN_LOCKOUT_SECONDS
    for key in _throttle_keys(email, ip):
        if not cache.add(key, 1, timeout):
            try:
                cache.incr(key)
            except ValueError:
                cache.set(key, 1, timeout)
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is not None:
        _audit_for_each_organization(user, "login.failed", ip)


def login_succeeded(*, user: User, ip: str | None) -> None:
    cache.delete(_throttle_keys(user.email, ip)[0])
    _audit_for_each_organization(user, "login.succeeded", ip)


def _audit_for_each_organization(user: User, action: str, ip: str | None) -> None:
    """A sign-in concerns every organization the person can act in: each admin team sees it."""
    org_ids = Membership.objects.filter(user=user, is_active=True).values_list(
        "organization_id", flat=True
    )
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                organization_id=org_id,
                actor=user,
                actor_label=user.email,
                action=action,
                target_type="user",
                target_id=str(user.pk),
                target_label=user.email,
                ip_address=ip,
            )
            for org_id in org_ids
        ]
    )


# --- Users (operators' tools) -------------------------------------------------------------------


@transaction.atomic
def user_set_password(*, user: User, password: str) -> User:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ApplicationError(
            " ".join(exc.messages), fields={"password": list(exc.messages)}
        ) from None
    user.set_password(password)
    user.save(update_fields=["password"])
    return user


@transaction.atomic
def user_delete(*, user: User) -> None:
    """Delete an account. Refused while it is the last owner of an organization."""
    for membership in Membership.objects.filter(
        user=user, role=Role.OWNER, is_active=True
    ).select_related("organization"):
        if _active_owner_count(membership.organization) <= 1:
            raise ApplicationError(
                _("%(email)s is the last owner of %(org)s; transfer ownership first.")
                % {"email": user.email, "org": membership.organization.name},
                code="last_owner",
            )
    for membership in Membership.objects.filter(user=user).select_related("organization"):
        ApiKey.objects.filter(
            organization=membership.organization, created_by=user, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        audit_record(
            organization=membership.organization,
            action="member.removed",
            target=membership,
            target_label=user.email,
            data={"reason": "account deleted"},
        )
    for organization_id in Membership.objects.filter(user=user).values_list(
        "organization_id", flat=True
    ):
        access_changed(organization_id, user.pk)
    user.delete()


# --- Operators (management commands) ------------------------------------------------------------
# An operator at the command line acts outside any organization: there is no acting member whose
# role bounds what they may do. The tenant's own rules (the last owner, key capping) still apply,
# and the audit log records the change with no actor and ``data["via"]``.


@transaction.atomic
def member_set_role_as_operator(
    *, organization: Organization, membership: Membership, role: str, via: str = "cli"
) -> Membership:
    """Change a member's role with no acting member.

    Same rules as ``member_set_role`` except the actor's rank: the role must exist, the last active
    owner cannot be demoted, and the member's API keys are capped at the new role. The owners are
    locked (SELECT FOR UPDATE) so two concurrent demotions cannot leave the organization ownerless.
    """
    if role not in ROLE_RANK:
        raise ApplicationError(
            _("Unknown role."), fields={"role": [_("Choose viewer, agent, admin or owner.")]}
        )
    membership = (
        Membership.objects.select_for_update()
        .select_related("user")
        .get(pk=membership.pk, organization=organization)
    )
    previous = membership.role
    if previous == role:
        return membership
    if previous == Role.OWNER and membership.is_active:
        owners = Membership.objects.select_for_update().filter(
            organization=organization, role=Role.OWNER, is_active=True
        )
        if len(owners.values_list("pk", flat=True)) <= 1:
            raise ApplicationError(_("The last owner cannot be demoted."), code="last_owner")
    membership.role = role
    membership.save(update_fields=["role"])
    # ``actor`` is not used by the capping itself; there is none here.
    _cap_api_keys(organization=organization, user_id=membership.user_id, role=role, actor=None)  # type: ignore[arg-type]
    access_changed(organization.pk, membership.user_id)
    audit_record(
        organization=organization,
        action="member.role_changed",
        target=membership,
        target_label=membership.user.email,
        data={"from": previous, "to": role, "via": via},
    )
    return membership


@transaction.atomic
def member_add_as_operator(
    *, organization: Organization, user: User, role: str, via: str = "cli"
) -> Membership:
    """Make ``user`` a member with ``role``; an existing membership has its role changed instead."""
    if role not in ROLE_RANK:
        raise ApplicationError(
            _("Unknown role."), fields={"role": [_("Choose viewer, agent, admin or owner.")]}
        )
    existing = scoped(Membership, organization).filter(user=user).first()
    if existing is not None:
        return member_set_role_as_operator(
            organization=organization, membership=existing, role=role, via=via
        )
    membership = Membership.objects.create(organization=organization, user=user, role=role)
    audit_record(
        organization=organization,
        action="member.added",
        target=membership,
        target_label=user.email,
        data={"role": role, "via": via},
    )
    return membership


@transaction.atomic
def user_make_superuser(*, user: User, via: str = "cli") -> User:
    """Give an account staff and superuser rights (the Django admin). Audited with no tenant."""
    if not (user.is_staff and user.is_superuser):
        user.is_staff = True
        user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
        audit_record(
            organization=None,
            action="user.superuser_granted",
            target=user,
            target_label=user.email,
            data={"via": via},
        )
    return user


def audit_scrub_target(*, organization: Organization, target_type: str, target_id: str) -> int:
    """Forget what the audit log says about an erased object: keep that events happened, not who."""
    return (
        scoped(AuditEvent, organization)
        .filter(target_type=target_type, target_id=str(target_id))
        .update(target_label="", data={})
    )
