import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jingkong.settings")
application = get_wsgi_application()

# The device lookup of health codes (POST /api/v1/codes/lookup) on a lean path: the same guard and view, without
# the middleware chain (jingkong/codes/lookup_wsgi.py); every other request goes to Django unchanged.
from jingkong.codes.lookup_wsgi import with_lookup_fast_path  # noqa: E402

application = with_lookup_fast_path(application)
