"""The JSON API under /api/v1: one NinjaAPI; each app mounts its router; errors are mapped once here."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError

from jingkong.access.auth import API_AUTH
from jingkong.core.exceptions import ApplicationError

api = NinjaAPI(
    title="Jingkong API",
    version="1",
    description="Outbreak-response command platform. Every operation is checked for role and region scope.",
    auth=API_AUTH,
    urls_namespace="api-v1",
)


@api.exception_handler(ApplicationError)
def _application_error(request: HttpRequest, exc: ApplicationError):
    return api.create_response(
        request, {"message": exc.message, "code": exc.code, "extra": exc.extra}, status=exc.status_code
    )


@api.exception_handler(AuthenticationError)
def _authentication_error(request: HttpRequest, exc: AuthenticationError):
    return api.create_response(
        request, {"message": "authentication required", "code": "not_authenticated", "extra": {}}, status=401
    )


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError):
    fields = []
    for err in exc.errors:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        fields.append({"field": loc, "reason": err.get("msg", "invalid")})
    message = "; ".join(f"{f['field']}: {f['reason']}" for f in fields) or "invalid input"
    return api.create_response(
        request, {"message": message, "code": "validation_failed", "extra": {"fields": fields}}, status=422
    )


def _mount() -> None:
    from jingkong.access.api import router as access_router
    from jingkong.codes.api import router as codes_router
    from jingkong.command.api import router as command_router
    from jingkong.core.api import router as core_router
    from jingkong.dashboard.api import router as dashboard_router
    from jingkong.geo.api import router as geo_router
    from jingkong.isolation.api import router as isolation_router
    from jingkong.people.api import router as people_router
    from jingkong.policy.api import router as policy_router
    from jingkong.testing.api import router as testing_router
    from jingkong.tracing.api import router as tracing_router
    from jingkong.zones.api import router as zones_router

    api.add_router("/core/", core_router)
    api.add_router("/access/", access_router)
    api.add_router("/policy/", policy_router)
    api.add_router("/geo/", geo_router)
    api.add_router("/people/", people_router)
    api.add_router("/testing/", testing_router)
    api.add_router("/tracing/", tracing_router)
    api.add_router("/zones/", zones_router)
    api.add_router("/codes/", codes_router)
    api.add_router("/isolation/", isolation_router)
    api.add_router("/command/", command_router)
    api.add_router("/dashboard/", dashboard_router)


_mount()
