from __future__ import annotations

import datetime as dt

from django.db import transaction

from jingkong.access import audit
from jingkong.access.auth import hash_token, new_token
from jingkong.access.models import ApiToken, User
from jingkong.core import clock
from jingkong.core.events import emit


@transaction.atomic
def token_create(*, user: User, name: str, actor, expires_at: dt.datetime | None = None, request=None) -> tuple[ApiToken, str]:
    """Create a bearer token for ``user``; the clear token is returned once and never stored."""
    token = new_token()
    row = ApiToken.objects.create(
        user=user, name=name, token_hash=hash_token(token), prefix=token[:10], created_at=clock.now(), expires_at=expires_at
    )
    audit.record(actor=actor, action="token.create", object_type="access.apitoken", object_id=row.pk,
                 region_code=user.region.code if user.region else "", request=request, detail={"user": user.username})
    emit("access.token_created", subject=row, region_code=user.region.code if user.region else "", actor=actor)
    return row, token
