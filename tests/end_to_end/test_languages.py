"""The pages in English and Bahasa Indonesia: chosen from the browser's language, switchable,
kept; every string of a language in its one file (headless Chromium, a real server)."""

from __future__ import annotations

import re
from pathlib import Path

from browser import CHROMIUM, chromium_args

STATIC = Path(__file__).resolve().parents[2] / "src" / "ruang" / "web" / "static"


def keys(lang: str) -> set[str]:
    """The keys a language file defines."""
    text = (STATIC / "lang" / f"{lang}.js").read_text()
    return set(re.findall(r'^\s*"([\w.]+)":', text, re.MULTILINE))


def test_every_language_says_only_what_english_says() -> None:
    english, indonesian = keys("en"), keys("id")
    assert len(english) > 30
    assert indonesian <= english, indonesian - english  # no key English lacks
    assert english - indonesian == set(), english - indonesian  # Indonesian says everything


def test_every_key_the_pages_use_exists() -> None:
    english = keys("en")
    used: set[str] = set()
    for page in STATIC.glob("*.html"):
        text = page.read_text()
        used |= set(re.findall(r'data-i18n="([\w.]+)"', text))
        for attr in re.findall(r'data-i18n-attr="([^"]+)"', text):
            used |= {pair.split(":")[1].strip() for pair in attr.split(";") if ":" in pair}
    for script in STATIC.glob("*.js"):
        used |= set(re.findall(r'\bt\("([\w.]+)"', script.read_text()))
    assert used and used <= english, used - english


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
