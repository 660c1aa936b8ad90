"""Testing pages under /testing/: each area keeps its own URL list."""

from jingkong.testing import urls_campaigns, urls_coverage, urls_labs

app_name = "testing"
urlpatterns = [*urls_campaigns.urlpatterns, *urls_labs.urlpatterns, *urls_coverage.urlpatterns]
