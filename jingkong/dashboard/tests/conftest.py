import pytest

FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "jingkong.dashboard.staticfinders.XStaticFinder",
]


@pytest.fixture(autouse=True)
def xstatic_finder(settings):
    """Until settings.py lists the finder (see jingkong.dashboard.staticfinders), enable it for these tests."""
    if "jingkong.dashboard.staticfinders.XStaticFinder" not in settings.STATICFILES_FINDERS:
        settings.STATICFILES_FINDERS = FINDERS
