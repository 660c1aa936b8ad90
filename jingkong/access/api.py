"""Access API: who am I, API tokens (own, and for users in one's scope), the audit log."""

from __future__ import annotations

import datetime as dt

from django.http import StreamingHttpResponse
from ninja import Query, Router

from jingkong.access import audit, selectors, services
from jingkong.access.guard import require
from jingkong.access.roles import Perm, permissions_of
from jingkong.access.schemas import (
    AuditFilters,
    AuditPageOut,
    MeOut,
    TokenCreatedOut,
    TokenCreateIn,
    TokenOut,
    UserOut,
)
from jingkong.core import clock

try:  # django-ninja >= 1.5
    from ninja import Status
except ImportError:  # pragma: no cover - older Ninja takes a (status, body) tuple
    def Status(code, value):  # noqa: N802
        return code, value

router = Router(tags=["access"])


@router.get("/me", response=MeOut)
@require(Perm.ACCOUNT)
def me(request):
    """The calling user: role, region scope and the permissions the role holds."""
    user = request.jk_user
    region = user.region if user.region_id else None
    return {
        "id": user.pk,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "role_label": str(user.get_role_display()),
        "region": {"code": region.code, "name": region.name, "level": region.level} if region else None,
        "scope": request.scope.prefix,
        "permissions": permissions_of(user.role),
        "auth": "token" if getattr(request, "jk_token", None) is not None else "session",
    }


def _expiry(days: int | None) -> dt.datetime | None:
    return clock.now() + dt.timedelta(days=days) if days else None


def _created(row, token: str) -> dict:
    return {**TokenOut.model_validate(row).model_dump(), "token": token}


@router.get("/tokens", response=list[TokenOut])
@require(Perm.ACCOUNT)
def tokens_list(request):
    """The caller's own API tokens (never the token itself, only its prefix)."""
    return list(selectors.token_list(user=request.jk_user))


@router.post("/tokens", response={201: TokenCreatedOut})
@require(Perm.ACCOUNT)
def tokens_create(request, payload: TokenCreateIn):
    """Create an API token for the caller. The token is in this answer only."""
    row, token = services.token_create(user=request.jk_user, name=payload.name, actor=request.jk_user,
                                       expires_at=_expiry(payload.expires_in_days), request=request)
    return Status(201, _created(row, token))


@router.delete("/tokens/{token_id}", response=TokenOut)
@require(Perm.ACCOUNT)
def tokens_revoke(request, token_id: int):
    """Revoke one of the caller's tokens."""
    row = selectors.token_get(user=request.jk_user, token_id=token_id)
    return services.token_revoke(token=row, actor=request.jk_user, request=request)


@router.get("/users", response=list[UserOut])
@require(Perm.USER_ADMIN)
def users_list(request):
    """Users inside the caller's region scope."""
    return [
        {"id": u.pk, "username": u.username, "display_name": u.display_name, "role": u.role,
         "region_code": u.region.code if u.region_id else None, "is_active": u.is_active}
        for u in selectors.user_list(scope=request.scope)
    ]


@router.get("/users/{user_id}/tokens", response=list[TokenOut])
@require(Perm.USER_ADMIN)
def user_tokens_list(request, user_id: int):
    """API tokens of a user inside the caller's scope."""
    target = selectors.user_get(scope=request.scope, user_id=user_id)
    return list(selectors.token_list(user=target))


@router.post("/users/{user_id}/tokens", response={201: TokenCreatedOut})
@require(Perm.USER_ADMIN)
def user_tokens_create(request, user_id: int, payload: TokenCreateIn):
    """Create an API token for a user inside the caller's scope (e.g. a device account). Shown once."""
    target = selectors.user_get(scope=request.scope, user_id=user_id)
    row, token = services.token_create(user=target, name=payload.name, actor=request.jk_user,
                                       expires_at=_expiry(payload.expires_in_days), request=request)
    return Status(201, _created(row, token))


@router.delete("/users/{user_id}/tokens/{token_id}", response=TokenOut)
@require(Perm.USER_ADMIN)
def user_tokens_revoke(request, user_id: int, token_id: int):
    """Revoke a token of a user inside the caller's scope."""
    target = selectors.user_get(scope=request.scope, user_id=user_id)
    row = selectors.token_get(user=target, token_id=token_id)
    return services.token_revoke(token=row, actor=request.jk_user, request=request)


def _audit_qs(request, filters: AuditFilters):
    return selectors.audit_list(
        scope=request.scope, user=filters.user, action=filters.action, object=filters.object,
        since=audit.parse_time_bound(filters.from_), until=audit.parse_time_bound(filters.to, end=True),
    )


@router.get("/audit", response=AuditPageOut)
@require(Perm.AUDIT_VIEW)
def audit_list(request, filters: Query[AuditFilters], limit: int = 100, offset: int = 0):
    """Audit records inside the caller's scope, newest first (filters: user, action, object, from, to)."""
    qs = _audit_qs(request, filters)
    limit = max(1, min(limit, 1000))
    offset = max(0, offset)
    return {"count": qs.count(), "items": list(qs[offset : offset + limit])}


@router.get("/audit/export.csv")
@require(Perm.AUDIT_VIEW)
def audit_export(request, filters: Query[AuditFilters]):
    """The filtered audit log as CSV (UTF-8, oldest first). The export itself is audited."""
    qs = _audit_qs(request, filters).order_by("at", "id")
    services.audit_export_record(actor=request.jk_user, request=request, rows=qs.count(),
                                 filters={"user": filters.user, "action": filters.action, "object": filters.object,
                                          "from": filters.from_, "to": filters.to})
    response = StreamingHttpResponse(audit.csv_chunks(qs.iterator(chunk_size=2000)), content_type="text/csv; charset=utf-8")
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="jingkong-audit-{stamp}.csv"'
    return response
