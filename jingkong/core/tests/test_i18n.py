"""The UI ships in Simplified Chinese (the default) and English (the source strings).

* The committed zh_Hans catalog is complete (nothing untranslated or fuzzy, placeholders kept) and its compiled .mo
  says the same as the .po (a fresh machine needs no GNU gettext: the .mo is in the repository).
* The catalog lists every string of the sources: makemessages is run into a scratch copy and compared (needs xgettext).
* Pages speak Chinese without any Accept-Language header and English when the browser or the language switch asks.
"""

from __future__ import annotations

import ast
import datetime as dt
import gettext as gnu_gettext
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.management import call_command
from django.template import Context, Template
from django.test import Client, override_settings
from django.utils import translation

PACKAGE_DIR = Path(__file__).resolve().parents[2]  # the jingkong package
LOCALE_DIR = PACKAGE_DIR / "locale"
PO_PATH = LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO_PATH = LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "django.mo"

# The makemessages options of docs/i18n.md (keep the two in step).
MAKEMESSAGES_IGNORE = ["tests/*", "*/tests/*", "conftest.py"]
UPDATE_HINT = (
    "Update the catalog as docs/i18n.md says: cd jingkong && "
    "DJANGO_SETTINGS_MODULE=jingkong.settings JINGKONG_DEBUG=1 ../.venv/bin/python -m django makemessages "
    "-l zh_Hans --ignore='tests/*' --ignore='*/tests/*' --ignore=conftest.py --add-location=file --no-obsolete, "
    "translate the new entries in locale/zh_Hans/LC_MESSAGES/django.po (and clear their '#, fuzzy' flags), then "
    "DJANGO_SETTINGS_MODULE=jingkong.settings JINGKONG_DEBUG=1 ../.venv/bin/python -m django compilemessages "
    "-l zh_Hans, and commit both django.po and django.mo."
)

PLACEHOLDER = re.compile(r"%\([A-Za-z_]\w*\)[#0 +-]*\d*(?:\.\d+)?[sdifr]|%[sdifr]|\{[A-Za-z_0-9]*\}")


# ---- a small .po reader (polib is not a dependency) ------------------------------------------------------------------
@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    line: int = 0

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)

    def __str__(self) -> str:
        return f"line {self.line}: {self.msgid!r}"


def parse_po(text: str) -> tuple[Entry, list[Entry]]:
    """The header entry and the message entries of a .po file (obsolete ``#~`` entries are skipped)."""
    entries: list[Entry] = []
    cur: Entry | None = None
    target: tuple[str, int] | None = None

    def close():
        nonlocal cur, target
        if cur is not None and (cur.msgid or cur.msgstr):
            entries.append(cur)
        cur, target = None, None

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            close()
            continue
        if line.startswith("#~"):
            continue
        if cur is None or (target and target[0] == "msgstr" and line.startswith(("#", "msgid", "msgctxt"))):
            close()
            cur = Entry(line=number)
        if line.startswith("#,"):
            cur.flags |= {f.strip() for f in line[2:].split(",") if f.strip()}
        elif line.startswith("#"):
            continue
        elif line.startswith("msgctxt "):
            cur.msgctxt, target = ast.literal_eval(line[8:]), ("msgctxt", 0)
        elif line.startswith("msgid_plural "):
            cur.msgid_plural, target = ast.literal_eval(line[13:]), ("msgid_plural", 0)
        elif line.startswith("msgid "):
            cur.msgid, target = ast.literal_eval(line[6:]), ("msgid", 0)
            cur.line = number
        elif line.startswith("msgstr["):
            index = int(line[7 : line.index("]")])
            cur.msgstr[index], target = ast.literal_eval(line[line.index("]") + 1 :].strip()), ("msgstr", index)
        elif line.startswith("msgstr "):
            cur.msgstr[0], target = ast.literal_eval(line[7:]), ("msgstr", 0)
        elif line.startswith('"') and target:
            piece = ast.literal_eval(line)
            if target[0] == "msgstr":
                cur.msgstr[target[1]] += piece
            else:
                setattr(cur, target[0], getattr(cur, target[0]) + piece)
        else:
            raise ValueError(f"cannot read line {number} of the catalog: {raw!r}")
    close()
    header = next((e for e in entries if e.msgid == "" and e.msgctxt is None), None)
    assert header is not None, "the catalog has no header entry"
    return header, [e for e in entries if e is not header]


def _catalog() -> tuple[Entry, list[Entry]]:
    assert PO_PATH.exists(), f"{PO_PATH} is missing. {UPDATE_HINT}"
    return parse_po(PO_PATH.read_text(encoding="utf-8"))


def test_po_reader_reads_plurals_contexts_and_continuation_lines():
    header, entries = parse_po(
        'msgid ""\nmsgstr ""\n"Language: zh_Hans\\n"\n\n'
        '#, python-format\nmsgid "one %(n)s"\nmsgid_plural "many %(n)s"\nmsgstr[0] "%(n)s 个"\n\n'
        'msgctxt "map"\nmsgid "Layer"\nmsgstr ""\n"图层"\n\n'
        '#, fuzzy\nmsgid ""\n"Long "\n"text"\nmsgstr ""\n\n'
        '#~ msgid "gone"\n#~ msgstr "已删"\n'
    )
    assert "Language: zh_Hans" in header.msgstr[0]
    plural, ctx, fuzzy = entries
    assert (plural.msgid_plural, plural.msgstr, plural.flags) == ("many %(n)s", {0: "%(n)s 个"}, {"python-format"})
    assert (ctx.msgctxt, ctx.msgid, ctx.msgstr[0]) == ("map", "Layer", "图层")
    assert (fuzzy.msgid, fuzzy.msgstr[0], "fuzzy" in fuzzy.flags) == ("Long text", "", True)


# ---- the committed catalog ---------------------------------------------------------------------------------------
def test_zh_hans_catalog_header():
    header, entries = _catalog()
    meta = header.msgstr[0]
    assert "fuzzy" not in header.flags, "the catalog header is still marked fuzzy (msgfmt would ignore it)"
    assert "Language: zh_Hans\n" in meta
    assert "Content-Type: text/plain; charset=UTF-8\n" in meta
    assert "Plural-Forms: nplurals=1; plural=0;\n" in meta  # Chinese has one plural form
    assert len(entries) > 100  # the whole UI, not a stub


def test_zh_hans_catalog_is_translated_and_not_fuzzy():
    _, entries = _catalog()
    fuzzy = [str(e) for e in entries if "fuzzy" in e.flags]
    untranslated = [str(e) for e in entries if not e.msgstr or any(not s.strip() for s in e.msgstr.values())]
    wrong_plurals = [str(e) for e in entries if e.msgid_plural is not None and sorted(e.msgstr) != [0]]
    assert not fuzzy, f"fuzzy entries in {PO_PATH.name} (check the translation, remove '#, fuzzy'): {fuzzy}"
    assert not untranslated, f"untranslated entries in {PO_PATH.name}: {untranslated}. {UPDATE_HINT}"
    assert not wrong_plurals, f"plural entries need exactly msgstr[0] (nplurals=1): {wrong_plurals}"


def test_zh_hans_translations_keep_placeholders_and_are_chinese():
    _, entries = _catalog()
    broken, english = [], []
    for e in entries:
        wanted = sorted(PLACEHOLDER.findall(e.msgid))
        for text in e.msgstr.values():
            if sorted(PLACEHOLDER.findall(text)) != wanted:
                broken.append(f"{e}: {wanted} vs {text!r}")
            if not re.search(r"[\u4e00-\u9fff]", text) and e.msgid not in {"API token", "API tokens"}:
                english.append(str(e))
    assert not broken, f"placeholders changed in translation: {broken}"
    assert not english, f"translations without any Chinese (copied English?): {english}"


def test_compiled_catalog_matches_the_po():
    assert MO_PATH.exists(), f"{MO_PATH} is missing. {UPDATE_HINT}"
    with MO_PATH.open("rb") as fh:
        mo = gnu_gettext.GNUTranslations(fh)
    _, entries = _catalog()
    stale = []
    for e in entries:
        if e.msgid_plural is not None:
            got = mo.npgettext(e.msgctxt, e.msgid, e.msgid_plural, 1) if e.msgctxt else mo.ngettext(e.msgid, e.msgid_plural, 1)
        else:
            got = mo.pgettext(e.msgctxt, e.msgid) if e.msgctxt else mo.gettext(e.msgid)
        if got != e.msgstr[0]:
            stale.append(f"{e}: .mo has {got!r}, .po has {e.msgstr[0]!r}")
    # Messages only in the .mo (removed from the .po but not recompiled); keys are str or (msgid, n) for plurals.
    po_keys = {(f"{e.msgctxt}\x04" if e.msgctxt else "") + e.msgid for e in entries}
    extra = sorted({k[0] if isinstance(k, tuple) else k for k in mo._catalog} - po_keys - {""})
    assert not stale and not extra, (
        f"django.mo is out of date with django.po: {stale + [f'only in .mo: {k!r}' for k in extra]}. {UPDATE_HINT}"
    )


def test_role_names_are_the_command_centre_terms():
    from jingkong.access.roles import Role

    expected = {
        "commander": "指挥长", "analyst": "分析员", "street_officer": "街道干部", "community_officer": "社区干部",
        "grid_worker": "网格员", "sampler": "采样员", "lab_technician": "检验员", "tracer": "流调员",
        "transfer_dispatcher": "转运调度员", "facility_manager": "隔离点管理员", "checkpoint_officer": "卡口执勤人员",
        "service_volunteer": "志愿者", "administrator": "系统管理员",
    }
    assert set(expected) == set(Role.values)
    with translation.override("zh-hans"):
        assert {role.value: str(role.label) for role in Role} == expected
    with translation.override("en"):
        assert str(Role.STREET_OFFICER.label) == "street officer"


def test_region_levels_are_the_administrative_terms():
    from jingkong.geo.models import Level

    with translation.override("zh-hans"):
        assert [str(label) for label in Level.labels] == ["区", "街道（镇）", "社区（村）", "网格"]


# ---- the catalog against the sources ------------------------------------------------------------------------------
def test_catalog_lists_every_source_string(tmp_path, monkeypatch):
    """Run makemessages into a scratch copy of the package and compare its msgids with the committed catalog."""
    if shutil.which("xgettext") is None or shutil.which("msgmerge") is None:
        pytest.skip("GNU gettext (xgettext, msgmerge) is not installed: cannot compare the catalog with the sources")
    copy = tmp_path / "jingkong"
    shutil.copytree(
        PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("locale", "__pycache__", "*.pyc", "data", "static")
    )
    (copy / "locale").mkdir()
    monkeypatch.chdir(copy)
    with override_settings(LOCALE_PATHS=[copy / "locale"]):
        call_command(
            "makemessages", locale=["zh_Hans"], ignore_patterns=MAKEMESSAGES_IGNORE, no_obsolete=True,
            add_location="file", verbosity=0,
        )
    _, fresh = parse_po((copy / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8"))
    _, committed = _catalog()
    source_keys = {e.key: e for e in fresh}
    catalog_keys = {e.key for e in committed}
    missing = sorted(e.msgid for k, e in source_keys.items() if k not in catalog_keys)
    obsolete = sorted(msgid for ctx, msgid in catalog_keys - set(source_keys))
    assert len(source_keys) > 100
    assert not missing, f"{len(missing)} UI string(s) of the sources are not in the zh_Hans catalog: {missing}. {UPDATE_HINT}"
    assert not obsolete, f"the zh_Hans catalog has strings no source uses any more: {obsolete}. {UPDATE_HINT}"


# ---- pages --------------------------------------------------------------------------------------------------------
def _html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


@pytest.mark.django_db
def test_login_page_is_chinese_by_default():
    html = _html(Client().get("/login/"))  # no Accept-Language header: LANGUAGE_CODE applies
    assert '<html lang="zh-hans">' in html
    for text in ("精控疫情防控指挥平台", "请使用指挥部分配的账号登录。", "用户名", "密码", "登录"):
        assert text in html, text
    assert "Username" not in html and "Log in" not in html


@pytest.mark.django_db
def test_login_page_in_english_when_the_browser_asks():
    html = _html(Client().get("/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9"))
    assert '<html lang="en">' in html
    for text in ("Jingkong outbreak command", "Sign in with the account your command centre gave you.", "Username"):
        assert text in html, text
    assert "用户名" not in html


@pytest.mark.django_db
def test_failed_login_message_is_chinese():
    html = Client().post("/login/", {"username": "nobody", "password": "wrong-password"}).content.decode()
    assert "请输入一个正确的" in html or "用户名和密码" in html, html  # Django's own zh_Hans message
    assert "Please enter a correct" not in html


@pytest.mark.django_db
def test_language_switch_changes_the_language_and_back():
    c = Client()  # anonymous: the switch is on the login page too
    r = c.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    assert r.status_code == 302 and r["Location"] == "/login/"
    html = _html(c.get("/login/"))
    assert '<html lang="en">' in html and "Username" in html and "用户名" not in html
    assert '<option value="en" selected>' in html  # the switch shows the current choice
    c.post("/i18n/setlang/", {"language": "zh-hans", "next": "/login/"})
    html = _html(c.get("/login/", HTTP_ACCEPT_LANGUAGE="en"))  # the chosen language wins over the browser's
    assert '<html lang="zh-hans">' in html and "用户名" in html


def _map_strings(html: str) -> dict:
    import json

    return json.loads(re.search(r'<script id="map-i18n" type="application/json">(.*?)</script>', html, re.S).group(1))


def test_home_page_is_chinese_by_default(regions, officer_a, client_for):
    html = _html(client_for(officer_a).get("/"))
    assert '<html lang="zh-hans">' in html
    assert "街道干部" in html  # the role in the top bar
    assert "基础底图" in html and "下级区域" in html and "退出登录" in html
    assert "街道（镇）" in html  # officer_a's region level
    assert "Base map" not in html and "street officer" not in html
    strings = _map_strings(html)  # the map script's strings come translated from the page
    assert strings["legend_title"] == "人口密度（人/平方千米）"
    assert strings["levels"]["grid"] == "网格" and strings["layers"]["buildings"] == "楼栋"


def test_home_page_in_english_on_request(regions, officer_a, client_for):
    html = _html(client_for(officer_a).get("/", HTTP_ACCEPT_LANGUAGE="en"))
    assert '<html lang="en">' in html
    assert "street officer" in html and "Base map" in html and "street / town" in html
    assert "街道干部" not in html and "基础底图" not in html
    strings = _map_strings(html)
    assert strings["legend_title"] == "Population density (persons / km²)" and strings["levels"]["grid"] == "grid"


def test_refusal_page_is_chinese(regions, officer_a, client_for):
    r = client_for(officer_a).get("/admin/", follow=True)  # the back office is for administrators only
    assert r.status_code == 403
    html = r.content.decode()
    assert "无权访问" in html and "后台管理仅限平台系统管理员使用。" in html
    assert "当前登录：officer_a（街道干部）。" in html


def test_times_show_in_shanghai_time_in_both_languages(settings):
    assert settings.TIME_ZONE == "Asia/Shanghai"
    at = dt.datetime(2022, 3, 1, 0, 30, tzinfo=dt.UTC)
    template = Template("{{ at }}")
    with translation.override("zh-hans"):
        assert template.render(Context({"at": at})) == "2022年3月1日 08:30"
    with translation.override("en"):
        assert template.render(Context({"at": at})) == "March 1, 2022, 8:30 a.m."
