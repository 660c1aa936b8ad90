from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from jingkong.access.roles import Role, role_has


class User(AbstractUser):
    """A platform user: one role and one region scope (their region's subtree)."""

    role = models.CharField(_("role"), max_length=32, choices=Role.choices, default=Role.ANALYST)
    region = models.ForeignKey(
        "geo.Region",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("region scope"),
        help_text=_("The user reads and changes only data inside this region's subtree."),
    )
    display_name = models.CharField(_("display name"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def has_role_perm(self, perm: str) -> bool:
        return bool(self.is_active and role_has(self.role, perm))


class ApiToken(models.Model):
    """Bearer token for devices and integrations. Only a SHA-256 of the token is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("user"))
    name = models.CharField(_("name"), max_length=64)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(_("prefix"), max_length=12)
    created_at = models.DateTimeField(_("created"))
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class AuditLogImmutable(PermissionError):
    """Raised when code tries to change or delete audit records."""


class AuditLogQuerySet(models.QuerySet):
    """Bulk ``update()``/``delete()`` bypass ``Model.save``/``delete``: refuse them too."""

    def update(self, **kwargs):
        raise AuditLogImmutable("audit records cannot be changed")

    def delete(self):
        raise AuditLogImmutable("audit records cannot be deleted")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditLogImmutable("audit records cannot be changed")

    update_or_create = update


class AuditLog(models.Model):
    """Who did what to which record, when and from where. Append-only: the application never updates or deletes it.

    Enforced three times: the model and its queryset refuse changes, the admin is read-only, and a database trigger
    (migration 0003) rejects UPDATE (and on PostgreSQL DELETE) of rows. ``user`` is PROTECT: users with an audit
    history are deactivated, not deleted (``username`` and ``role`` are copied into the record anyway).
    """

    at = models.DateTimeField(_("time"))
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("user"))
    username = models.CharField(_("username"), max_length=150, blank=True)
    role = models.CharField(_("role"), max_length=32, blank=True)
    action = models.CharField(_("action"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=64, blank=True)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    region_code = models.CharField(_("region code"), max_length=32, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=255, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit record")
        verbose_name_plural = _("audit log")
        indexes = [
            models.Index(fields=["at"], name="access_audit_at"),
            models.Index(fields=["action", "at"], name="access_audit_action"),
            models.Index(fields=["object_type", "object_id"], name="access_audit_object"),
            models.Index(fields=["user", "at"], name="access_audit_user"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None or not self._state.adding:
            raise AuditLogImmutable("audit records cannot be changed")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutable("audit records cannot be deleted")
