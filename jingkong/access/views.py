from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import JsonResponse

from jingkong.access.guard import public


@public
def health(request):
    """Liveness probe for load balancers: no data, no database."""
    return JsonResponse({"status": "ok"})


login_view = public(auth_views.LoginView.as_view(redirect_authenticated_user=True))
logout_view = auth_views.LogoutView.as_view()
