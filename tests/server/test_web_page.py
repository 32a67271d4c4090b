"""The web page at "/" in headless Chromium (Playwright, the system's /usr/bin/chromium): type a
prompt, press Generate, wait for playable audio, check its duration and that the browser decodes
it; and that a refused request shows the server's JSON error message."""
from __future__ import annotations

import os
import shutil

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("MUSICGEN_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("MUSICGEN_REQUIRE_SERVER") == "1":
            pytest.fail(f"{CHROMIUM} not found (Debian: apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not found")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


def generate_in_page(page, server, *, duration: str, stream: bool, fmt: str = "wav", seed: str = "7") -> dict:
    page.goto(server.url + "/")
    page.fill("#prompt", "a calm piano melody")
    page.fill("#duration", duration)
    page.fill("#seed", seed)
    page.click("#advanced summary")
    page.select_option("#format", fmt)
    page.set_checked("#stream", stream)
    page.click("#generate")
    # Playable: the player has loaded its metadata and at least the current frame (readyState >= 2).
    page.wait_for_function("() => document.getElementById('player').readyState >= 2 || "
                           "!document.getElementById('error').hidden", timeout=120_000)
    assert page.is_hidden("#error"), page.text_content("#error")
    # Decode the file the page made, as a listener's browser would.
    return page.evaluate("""async () => {
        const player = document.getElementById('player');
        const bytes = await (await fetch(player.src)).arrayBuffer();
        const ctx = new OfflineAudioContext(1, 1, 32000);
        const buffer = await ctx.decodeAudioData(bytes);
        const data = buffer.getChannelData(0);
        let peak = 0;
        for (const v of data) peak = Math.max(peak, Math.abs(v));
        return { elementDuration: player.duration, decodedDuration: buffer.duration,
                 sampleRate: buffer.sampleRate, peak,
                 download: document.getElementById('download').getAttribute('download'),
                 progress: document.getElementById('progress').value };
    }""")


@pytest.mark.parametrize("stream", [False, True], ids=["file", "stream"])
def test_generate_plays_audio_of_the_requested_length(browser, server, stream):
    page = browser.new_page()
    try:
        result = generate_in_page(page, server, duration="2", stream=stream)
    finally:
        page.close()
    assert abs(result["elementDuration"] - 2.0) <= 0.1, result
    assert abs(result["decodedDuration"] - 2.0) <= 0.1, result
    assert result["peak"] > 0, "the decoded audio is silent"
    assert result["download"] == "musicgen-7.wav"
    assert result["progress"] == 1


def test_largest_seed_is_sent_exactly(browser, server):
    # 2^63-1 is past a JS number's exact range: the page must send the digits as typed.
    page = browser.new_page()
    try:
        result = generate_in_page(page, server, duration="0.5", stream=False, seed="9223372036854775807")
    finally:
        page.close()
    assert result["download"] == "musicgen-9223372036854775807.wav"


def test_refused_request_shows_the_servers_message(browser, server):
    page = browser.new_page()
    try:
        page.goto(server.url + "/")
        page.fill("#prompt", "too long")
        page.fill("#duration", "100000")
        page.click("#generate")
        page.wait_for_selector("#error:not([hidden])", timeout=30_000)
        text = page.text_content("#error")
    finally:
        page.close()
    assert "duration" in text and "HTTP 400" in text, text


def tiny_wav() -> bytes:
    import io
    import struct
    import wave
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(32000)
        w.writeframes(struct.pack("<16000h", *([1000, -1000] * 8000)))
    return out.getvalue()


def test_melody_upload_goes_as_multipart(browser, server):
    # The tiny model follows no melody, so the server refuses the upload: the message it gives
    # shows that the page sent the file (multipart field "melody") and displays the refusal.
    page = browser.new_page()
    try:
        page.goto(server.url + "/")
        page.fill("#prompt", "with a tune")
        page.fill("#duration", "1")
        page.set_input_files("#melody", {"name": "tune.wav", "mimeType": "audio/wav", "buffer": tiny_wav()})
        with page.expect_request("**/v1/music/generations") as request_info:
            page.click("#generate")
        page.wait_for_selector("#error:not([hidden])", timeout=30_000)
        text = page.text_content("#error")
        content_type = request_info.value.headers.get("content-type", "")
    finally:
        page.close()
    assert content_type.startswith("multipart/form-data"), content_type
    assert "melody" in text and "HTTP 400" in text, text
