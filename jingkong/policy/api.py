"""Policy profiles under /api/v1/policy/: read, validate, version, activate."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ninja import Router

try:  # django-ninja >= 1.6; older releases take a (status, body) tuple
    from ninja import Status
except ImportError:  # pragma: no cover
    def Status(code, body):  # noqa: N802 - mirrors ninja.Status
        return code, body

from jingkong.access.guard import require
from jingkong.access.roles import Perm
from jingkong.core import clock
from jingkong.geo.models import Region
from jingkong.policy import selectors, services
from jingkong.policy.schema import validate_any
from jingkong.policy.schemas import (
    ActivateIn,
    ActivationOut,
    ActiveOut,
    ProfileCreateIn,
    ProfileDetailOut,
    ProfileOut,
    ValidateIn,
    ValidateOut,
)

router = Router(tags=["policy"])


def _aware(at: dt.datetime | None) -> dt.datetime | None:
    if at is not None and at.tzinfo is None:
        return at.replace(tzinfo=ZoneInfo(clock.local_time_zone()))
    return at


@router.get("/profiles", response=list[ProfileOut])
@require(Perm.POLICY_VIEW)
def profiles_list(request, code: str = "", latest: bool = False):
    """Profile versions, by code and version (``latest=true``: only the newest version of each code)."""
    return selectors.profile_list(code=code or None, latest_only=latest)


@router.get("/profiles/{code}", response=ProfileDetailOut)
@require(Perm.POLICY_VIEW)
def profiles_get(request, code: str, version: int | None = None):
    """One profile version with its rules and the provenance of each value (the latest version by default)."""
    return selectors.profile_get(code=code, version=version)


@router.post("/profiles", response={201: ProfileDetailOut})
@require(Perm.POLICY_EDIT)
def profiles_create(request, payload: ProfileCreateIn):
    """Validate a rule set and store it as the next version of the profile (versions are never changed)."""
    data = payload.dict()
    profile = services.profile_create(actor=request.jk_user, request=request, **data)
    return Status(201, profile)


@router.post("/validate", response=ValidateOut)
@require(Perm.POLICY_VIEW)
def rules_validate(request, payload: ValidateIn):
    """Check a rule set (or a whole profile document) without storing it; each error has its JSON path."""
    _, errors = validate_any(payload.rules)
    return {"valid": not errors, "errors": [e.as_dict() for e in errors]}


@router.get("/active", response=ActiveOut)
@require(Perm.POLICY_VIEW)
def active_get(request, region: str = "", at: dt.datetime | None = None):
    """The profile in force for a region in your scope (default: your own region, i.e. your district's rules)."""
    user_region = request.jk_user.region
    code = region or (user_region.code if user_region else "")
    if code:
        request.scope.check(code, "region")
    found = selectors.active_profile(region_code=code or None, at=_aware(at))
    return {"region_code": found.region_code, "at": found.at, "profile": found.profile, "activation": found.activation}


@router.get("/activations", response=list[ActivationOut])
@require(Perm.POLICY_VIEW)
def activations_list(request, limit: int = 200):
    """Activation history that concerns your scope (your regions and their ancestors), newest first."""
    return list(selectors.activation_list(scope=request.scope, limit=limit))


@router.post("/activations", response={201: ActivationOut})
@require(Perm.POLICY_EDIT)
def activations_create(request, payload: ActivateIn):
    """Put a profile version in force for a region inside your scope, from now on (audited)."""
    request.scope.check(payload.region_code, "region")
    region = Region.objects.filter(code=payload.region_code).first()
    if region is None:
        request.scope.check(None, "region")
    profile = selectors.profile_get(code=payload.profile_code, version=payload.version)
    activation = services.profile_activate(profile=profile, region=region, actor=request.jk_user,
                                           reason=payload.reason, request=request)
    return Status(201, activation)
