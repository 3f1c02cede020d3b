"""The pages in English and Bahasa Indonesia: chosen from the browser's language, switchable,
kept; every string of a language in its one file (headless Chromium, a real server)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from browser import CHROMIUM, chromium_args

STATIC = Path(__file__).resolve().parents[2] / "src" / "ruang" / "web" / "static"


def table(lang: str) -> dict[str, str]:
    """A language file's strings, key to text."""
    text = (STATIC / "lang" / f"{lang}.js").read_text()
    pairs = re.findall(r'^\s*"([\w.]+)":\s*"((?:[^"\\]|\\.)*)",?\s*$', text, re.MULTILINE)
    return {key: json.loads(f'"{value}"') for key, value in pairs}


def keys(lang: str) -> set[str]:
    """The keys a language file defines."""
    return set(table(lang))


def test_every_language_says_only_what_english_says() -> None:
    english, indonesian = keys("en"), keys("id")
    assert len(english) > 200
    assert indonesian <= english, indonesian - english  # no key English lacks
    assert english - indonesian == set(), english - indonesian  # Indonesian says everything
    lines = (STATIC / "lang" / "en.js").read_text().count('":')
    assert len(english) == lines  # every entry was read (none written so the regex misses it)


def keys_used() -> tuple[set[str], set[str]]:
    """The keys the pages and scripts name: (certainly keys, any literal that may be one)."""
    english = keys("en")
    prefixes = {key.split(".")[0] for key in english if "." in key}
    used: set[str] = set()
    literals: set[str] = set()
    for page in STATIC.glob("*.html"):
        text = page.read_text()
        used |= set(re.findall(r'data-i18n="([\w.]+)"', text))
        for attr in re.findall(r'data-i18n-attr="([^"]+)"', text):
            used |= {pair.split(":")[1].strip() for pair in attr.split(";") if ":" in pair}
    scripts = list(STATIC.glob("*.js"))
    assert len(scripts) >= 10
    for script in scripts:
        text = re.sub(r"^\s*//.*$", "", script.read_text(), flags=re.MULTILINE)  # not comments
        # t("key"), t("key", {vars}), tr("key", …) and the helpers that take a key
        used |= set(re.findall(r'\b(?:t|tr|words|say|confirm)\(\s*(?:[\w$]+,\s*)?"([\w.]+)"', text))
        # keys kept in tables or chosen by a condition: "listen.play", … (a known prefix)
        found = set(re.findall(r'"([a-z_]+\.[\w.]+)"', text))
        used |= {k for k in found if k.split(".")[0] in prefixes and not k.endswith(".js")}
        literals |= set(re.findall(r'"([\w.]+)"', text))
    return used, used | literals


def test_every_key_the_pages_use_exists() -> None:
    english = keys("en")
    used, _ = keys_used()
    assert len(used) > 150
    assert used <= english, used - english


def test_every_key_english_defines_is_used() -> None:
    _, named = keys_used()
    unused = keys("en") - named
    assert unused == set(), unused  # a dead string is one nobody translates for a reason


def english_phrases() -> list[str]:
    """The English texts a page must not show when Indonesian is chosen: every run of two or
    more words between a string's {placeholders} that the Indonesian table does not share."""
    indonesian = " ".join(table("id").values())
    out = set()
    for text in table("en").values():
        for part in re.split(r"\{\w+\}", text):
            part = part.strip(" ·:,()")
            if len(part.split()) >= 2 and len(part) >= 8 and part not in indonesian:
                out.add(part)
    return sorted(out)


def test_english_phrases_are_many() -> None:
    phrases = english_phrases()
    assert len(phrases) > 150, len(phrases)
    assert "Request to speak" in phrases and "Go on stage" in phrases


# The visible words of a page: its text as rendered, the title, and the labels, placeholders
# and descriptions of the elements shown (what a screen reader says too).
VISIBLE_TEXT = """() => {
  const shown = (el) => !!(el.offsetParent || el.getClientRects().length);
  const out = [document.title, document.body.innerText];
  const attrs = ["aria-label", "placeholder", "aria-description", "title"];
  for (const el of document.querySelectorAll(attrs.map((a) => "[" + a + "]").join(","))) {
    if (!shown(el)) continue;
    for (const a of attrs) {
      if (el.hasAttribute(a)) out.push(el.getAttribute(a));
    }
  }
  return out.join("\\n");
}"""


async def english_left(page) -> list[str]:
    text = await page.evaluate(VISIBLE_TEXT)
    return [phrase for phrase in english_phrases() if phrase in text]


async def no_sideways_scroll(page) -> None:
    width = await page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 375, width


async def test_the_create_page_speaks_the_browsers_language_and_switches(
    server, tmp_path, artifacts
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(tmp_path / "none.wav")
        )
        try:
            english = await browser.new_page(locale="en-US")
            await english.goto(server.url + "/")
            assert await english.text_content("h1") == "Start a live audio space"
            await english.select_option("#lang-select", "id")
            assert await english.text_content("h1") == "Mulai ruang audio langsung"
            assert await english.get_attribute("html", "lang") == "id"
            label = await english.get_attribute("[data-copy='page-url']", "aria-label")
            assert label == "Salin tautan pendengar"
            await english.reload()  # the choice is kept
            assert await english.text_content("h1") == "Mulai ruang audio langsung"
            await english.screenshot(path=str(artifacts / "create-id-desktop.png"), full_page=True)

            context = await browser.new_context(
                locale="id-ID", viewport={"width": 390, "height": 844}
            )
            phone = await context.new_page()
            await phone.goto(server.url + "/")
            assert await phone.text_content("h1") == "Mulai ruang audio langsung"
            await phone.fill("#title", "Obrolan pagi")
            await phone.click("#create-button")
            await phone.wait_for_selector("#result:not([hidden])")
            heading = await phone.text_content("#result-heading")
            assert heading == "Ruang Anda “Obrolan pagi” sudah siap", heading
            assert await phone.text_content("#result-title") == "Obrolan pagi"
            await phone.screenshot(path=str(artifacts / "created-id-phone.png"), full_page=True)
            await context.close()
        finally:
            await browser.close()


async def test_the_listener_and_studio_pages_speak_indonesian(server, tmp_path, artifacts) -> None:
    """A real space (a live one with an invited speaker, and a scheduled one): its listener
    page and its host's studio in Indonesian from the browser's language, then English, then
    Indonesian again, with no English left on screen and no sideways scroll on a phone."""
    from playwright.async_api import async_playwright

    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        space = (await api.post("/api/spaces", json={"title": "Obrolan sore"})).json()
        auth = {"Authorization": f"Bearer {space['host_token']}"}
        invite = await api.post(
            f"/api/spaces/{space['id']}/speakers", json={"name": "Sari"}, headers=auth
        )
        assert invite.status_code in (200, 201), invite.text
        later = (
            await api.post(
                "/api/spaces",
                json={"title": "Kopi pagi", "starts_at": "2030-01-01T01:00:00Z", "tags": ["kopi"]},
            )
        ).json()

    listener_ready = "!document.getElementById('state-badge').hidden"
    studio_ready = (
        "document.querySelector('#stage-list button[data-action=block]') &&"
        " !document.getElementById('moderation').hidden &&"
        " !document.getElementById('requests-empty').hidden"
    )
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(tmp_path / "none.wav")
        )
        try:
            context = await browser.new_context(locale="id-ID")
            page = await context.new_page()

            # -- the listener page of a live space
            await page.goto(space["page_url"])
            await page.wait_for_function(listener_ready)
            assert await page.get_attribute("html", "lang") == "id"
            assert await page.text_content("#state-badge") == "Siaran"
            assert await page.text_content("#stage-heading") == "Di panggung"
            assert await page.text_content("#play-button") == "Putar"
            assert await page.text_content("#request-button") == "Minta bicara"
            assert await page.text_content("#take-part-heading") == "Ikut serta"
            assert await english_left(page) == []
            await page.screenshot(path=str(artifacts / "listen-id-desktop.png"), full_page=True)

            await page.select_option("#lang-select", "en")
            assert await page.text_content("#play-button") == "Play"
            assert await page.text_content("#request-button") == "Request to speak"
            assert await page.text_content("#state-badge") == "Live"
            assert await page.get_attribute("html", "lang") == "en"
            assert len(await english_left(page)) >= 5  # the check sees English when it is there
            await page.screenshot(path=str(artifacts / "listen-en-desktop.png"), full_page=True)
            await page.set_viewport_size({"width": 375, "height": 800})
            await no_sideways_scroll(page)
            await page.screenshot(path=str(artifacts / "listen-en-phone.png"), full_page=True)

            await page.select_option("#lang-select", "id")
            assert await page.text_content("#play-button") == "Putar"
            assert await english_left(page) == []
            await no_sideways_scroll(page)
            await page.screenshot(path=str(artifacts / "listen-id-phone.png"), full_page=True)

            # -- the listener page of a scheduled space: the countdown card
            await page.set_viewport_size({"width": 1280, "height": 900})
            await page.goto(later["page_url"])
            await page.wait_for_function(listener_ready)
            await page.wait_for_function("window.ruangSchedule && window.ruangSchedule.shown")
            assert await page.text_content("#schedule-heading") == "Segera hadir"
            assert (await page.text_content("#countdown") or "").startswith("Mulai dalam ")
            assert await page.text_content("#state-badge") == "Terjadwal"
            assert await page.text_content("#play-button") == "Menunggu dimulai… (batal)"
            assert await english_left(page) == []
            await page.screenshot(path=str(artifacts / "scheduled-id-desktop.png"), full_page=True)
            await page.set_viewport_size({"width": 375, "height": 800})
            await no_sideways_scroll(page)
            await page.screenshot(path=str(artifacts / "scheduled-id-phone.png"), full_page=True)

            # -- the host's studio, with a speaker to moderate
            await page.set_viewport_size({"width": 1280, "height": 900})
            await page.goto(space["host_url"])
            await page.wait_for_function(studio_ready)
            assert await page.text_content("#role-label") == "Studio tuan rumah"
            assert await page.text_content("#go-button") == "Naik ke panggung"
            assert await page.text_content("#invite-heading") == "Undang pembicara"
            assert await page.text_content("#requests-heading") == "Permintaan bicara"
            block = page.locator("#stage-list button[data-action=block]")
            assert await block.text_content() == "Blokir"
            assert await block.get_attribute("aria-label") == "Blokir: Sari"
            copy = page.locator("[data-copy='listen-url']")
            assert await copy.get_attribute("aria-label") == "Salin tautan pendengar"
            assert await english_left(page) == []
            await page.screenshot(path=str(artifacts / "studio-id-desktop.png"), full_page=True)

            await page.select_option("#lang-select", "en")
            assert await page.text_content("#go-button") == "Go on stage"
            assert await page.text_content("#role-label") == "Host studio"
            assert await block.text_content() == "Block"
            assert await page.text_content("#conn-text") == "Off stage"
            assert len(await english_left(page)) >= 5
            await page.screenshot(path=str(artifacts / "studio-en-desktop.png"), full_page=True)
            await page.set_viewport_size({"width": 375, "height": 800})
            await no_sideways_scroll(page)
            await page.screenshot(path=str(artifacts / "studio-en-phone.png"), full_page=True)

            await page.select_option("#lang-select", "id")
            assert await page.text_content("#conn-text") == "Tidak di panggung"
            assert await block.text_content() == "Blokir"
            assert await english_left(page) == []
            await no_sideways_scroll(page)
            await page.screenshot(path=str(artifacts / "studio-id-phone.png"), full_page=True)

            await page.reload()  # the choice is kept
            await page.wait_for_function(studio_ready)
            assert await page.text_content("#go-button") == "Naik ke panggung"
            await context.close()
        finally:
            await browser.close()
