"""Django settings for Jingkong, read strictly from the environment (see jingkong.core.env).

Variables:
    JINGKONG_DATA_DIR    where the embedded database, uploads and job files live (default ./var)
    DATABASE_URL         sqlite:///path or postgres://user:pw@host:port/name (default: SQLite in the data dir)
    JINGKONG_SECRET_KEY  required unless JINGKONG_DEBUG or JINGKONG_DEMO is on
    JINGKONG_ID_HASH_KEY key for the resident-ID lookup hash (defaults to the secret key)
    JINGKONG_TIME_ZONE   time zone shown in the UI (default Asia/Shanghai); storage is always UTC
    JINGKONG_DEBUG, JINGKONG_DEMO, JINGKONG_ALLOWED_HOSTS (comma-separated)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from django.utils.translation import gettext_lazy as _

from jingkong.core.env import ConfigError, env_bool, env_time_zone, parse_database_url

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("JINGKONG_DATA_DIR") or "var").resolve()

DEBUG = env_bool("JINGKONG_DEBUG", False)
DEMO = env_bool("JINGKONG_DEMO", False)
TESTING = "pytest" in sys.modules


def _local_secret(path: Path) -> str:
    """Debug/demo without a configured secret: a random key kept in the data directory (never a shared constant,
    so ID hashes and sessions of one demo cannot be reproduced from the source code)."""
    import secrets

    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


_secret = os.environ.get("JINGKONG_SECRET_KEY", "")
if not _secret:
    if TESTING:
        _secret = "jingkong-test-key-" + "x" * 32
    elif DEBUG or DEMO:
        _secret = _local_secret(DATA_DIR / "secret-key")
    else:
        raise ConfigError(
            "JINGKONG_SECRET_KEY is required outside debug/demo mode "
            "(set JINGKONG_DEMO=1 for a demo, or provide a long random secret)"
        )
elif len(_secret) < 32 and not (DEBUG or DEMO or TESTING):
    raise ConfigError("JINGKONG_SECRET_KEY must be at least 32 characters long")
SECRET_KEY = _secret
ID_HASH_KEY = os.environ.get("JINGKONG_ID_HASH_KEY") or SECRET_KEY

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("JINGKONG_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
if TESTING:
    ALLOWED_HOSTS += ["testserver"]

DATABASES = {"default": parse_database_url(os.environ.get("DATABASE_URL") or "sqlite://", data_dir=DATA_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "jingkong.access.admin_site.JingkongAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "jingkong.core",
    "jingkong.access",
    "jingkong.policy",
    "jingkong.geo",
    "jingkong.people",
    "jingkong.synth",
    "jingkong.testing",
    "jingkong.tracing",
    "jingkong.zones",
    "jingkong.codes",
    "jingkong.isolation",
    "jingkong.command",
    "jingkong.analytics",
    "jingkong.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "jingkong.access.middleware.PageLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "jingkong.core.middleware.ApplicationErrorMiddleware",
    "jingkong.core.middleware.NulCharacterMiddleware",
]

ROOT_URLCONF = "jingkong.urls"
WSGI_APPLICATION = "jingkong.wsgi.application"
AUTH_USER_MODEL = "access.User"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "jingkong.access.context.navigation",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True  # stored as aware UTC; shown in TIME_ZONE
TIME_ZONE = env_time_zone("JINGKONG_TIME_ZONE", "Asia/Shanghai")

STATIC_URL = "/static/"
STATIC_ROOT = None  # no collectstatic: WhiteNoise serves straight from the installed packages
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": DATA_DIR / "media"}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    # jingkong/static plus Leaflet and its marker-cluster plugin from their installed xstatic packages
    "jingkong.dashboard.staticfinders.XStaticFinder",
]
WHITENOISE_USE_FINDERS = True  # serve package static files straight from the installed packages (offline)

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("JINGKONG_LOG_LEVEL", "WARNING")},
}
