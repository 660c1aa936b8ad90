"""WSGI application for benchmarks only: the platform's own settings and middleware, serving one bare JSON endpoint.

``POST /api/bench/bare`` parses the JSON body and answers a small JSON object — no authentication, no database. It is
the baseline the scan benchmark divides by (same gunicorn configuration as ``jingkong serve``, same Django stack),
so the ratio shows what the scan routes add on top of HTTP + gunicorn + Django. Never part of the product.

    python -m gunicorn benchmarks.bench_wsgi:application ...   (run from the repository root)
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jingkong.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


@csrf_exempt
def bare(request):
    body = json.loads(request.body or b"{}")
    return JsonResponse({"status": "ok", "received": len(body) if isinstance(body, dict | list) else 0})


urlpatterns = [path("api/bench/bare", bare)]
settings.ROOT_URLCONF = __name__
application = get_wsgi_application()
