"""The playground page in Debian's headless Chromium, driven by Selenium, against a live server
with a real worker on the preview engine: paste a key, pick a model, fill the form, watch the
quote, queue, follow the progress and play the MP4 the server returned."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.accounts import account_of, balance, live_server, price_micros
from tests.conftest import Env, png_data_url
from videoqueue.catalog.content_policy import ContentRule
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("VIDEOQUEUE_TEST_ARTIFACTS") or REPO / "test-artifacts")
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--window-size=1000,1600",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
    # Nothing but 127.0.0.1: no updates, safe-browsing lists, sync or metrics.
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--no-pings",
    "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
)
TRANSITION = "pixverse-c1-transition"  # takes a start and an end image, audio toggle
PRIVATE = "grok-imagine-text-to-video-private"  # delivers through a download_url
REFERENCES = "grok-imagine-reference-to-video-private"  # 1 to 7 reference images
ELEMENTS = "kling-o3-standard-reference-to-video"  # Kling's elements and scene images
BANNED = "forbidden"  # the test server's content policy refuses prompts with this word
DEADLINE_S = 30

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The usual test settings, with a content policy rule."""
    rule = ContentRule(pattern=BANNED, suggested_prompt="A kite over the dunes")
    return settings.model_copy(update={"content_policy_rules": [rule]})


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One headless Chromium for the module; Selenium Manager is never asked for a driver."""
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(
            options=options, service=Service(executable_path=str(CHROMEDRIVER))
        )
    yield driver
    driver.quit()


@pytest.fixture
def page(env: Env, browser: WebDriver, request: pytest.FixtureRequest) -> Iterator[WebDriver]:
    """The browser on the playground of a live server; a screenshot of the whole page and the
    browser's console are saved under the artifacts folder when the test ends."""
    with live_server(env.client.app) as api_base:
        browser.get(api_base.removesuffix("api/v1"))
        yield browser
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = request.node.name
        shot = browser.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        (ARTIFACTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
        console = "\n".join(str(entry) for entry in browser.get_log("browser"))
        (ARTIFACTS / f"{name}.console.txt").write_text(console)


def wait_for(page: WebDriver, condition: Any, what: str, timeout: float = DEADLINE_S) -> Any:
    """Poll `condition(page)` until it is truthy; fail with what the page shows at the deadline."""
    try:
        return WebDriverWait(page, timeout, poll_frequency=0.1).until(condition)
    except TimeoutException:
        shown = page.find_element(By.TAG_NAME, "main").text
        pytest.fail(f"{what} within {timeout} s; the page shows:\n{shown}")


def text_of(page: WebDriver, element_id: str) -> str:
    return page.find_element(By.ID, element_id).text


def paste_key(page: WebDriver, key: str) -> None:
    field = page.find_element(By.ID, "api-key")
    field.clear()
    field.send_keys(key)


def paste_new_key(env: Env, page: WebDriver, balance_usd: str = "10") -> str:
    """Paste the key of a new account holding `balance_usd`; the key."""
    key = env.make_key(balance_usd=balance_usd)
    paste_key(page, key)
    return key


def pick_model(page: WebDriver, model: str) -> None:
    wait_for(page, lambda p: p.find_element(By.ID, "model").is_enabled(), "no models listed")
    Select(page.find_element(By.ID, "model")).select_by_value(model)


def choose(page: WebDriver, field: str, value: str) -> None:
    Select(page.find_element(By.ID, f"field-{field}")).select_by_value(value)


def shown_quote(page: WebDriver) -> float | None:
    usd = page.find_element(By.ID, "quote").get_attribute("data-usd")
    return float(usd) if usd else None


def wait_for_quote(page: WebDriver, env: Env, body: dict[str, Any]) -> float:
    """Wait until the page shows the server's own quote for `body`."""
    expected = price_micros(env, body) / 1_000_000
    wait_for(page, lambda p: shown_quote(p) == expected, f"no quote of {expected} USD")
    return expected


def fill_in(page: WebDriver, model: str, prompt: str) -> dict[str, Any]:
    """Pick `model` and type `prompt`; the request the form then holds, media aside."""
    pick_model(page, model)
    page.find_element(By.ID, "field-prompt").send_keys(prompt)
    return form_body(page, model, prompt)


def unprompted(body: dict[str, Any]) -> dict[str, Any]:
    """A request without its prompt, as the page quotes it."""
    return {k: v for k, v in body.items() if k != "prompt"}


def form_body(page: WebDriver, model: str, prompt: str) -> dict[str, Any]:
    """The request the page's form holds for `model`: `prompt` and the menus' choices."""
    body: dict[str, Any] = {"model": model, "prompt": prompt}
    for field in ("duration", "resolution", "aspect_ratio"):
        menus = page.find_elements(By.ID, f"field-{field}")
        if menus:
            body[field] = Select(menus[0]).first_selected_option.get_attribute("value")
    return body


def refusal(page: WebDriver, heading: str) -> list[str]:
    """The lines the page shows under the form once it refuses to queue, or the server does;
    `heading` is the first line's end."""

    def shown(p: WebDriver) -> bool:
        box = p.find_element(By.ID, "request-error")
        return box.is_displayed() and box.text.splitlines()[0].endswith(heading)

    wait_for(page, shown, f"no error ending {heading!r}")
    return text_of(page, "request-error").splitlines()


def png_file(path: Path, color: tuple[int, int, int]) -> str:
    Image.new("RGB", (640, 360), color).save(path)
    return str(path)


def played_mp4(page: WebDriver) -> tuple[dict[str, Any], bytes]:
    """Play the result video until its clock moves; what the element reports, and the bytes
    it plays (read back from its blob URL)."""
    wait_for(
        page,
        lambda p: p.execute_script("return document.getElementById('result').readyState >= 2"),
        "the video never had a frame to show",
    )
    report: dict[str, Any] = page.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const video = document.getElementById("result");
        const start = video.currentTime;
        const status = (extra) => done({
          readyState: video.readyState, width: video.videoWidth, height: video.videoHeight,
          duration: video.duration, start, currentTime: video.currentTime,
          error: video.error && video.error.code,
          h264: video.canPlayType('video/mp4; codecs="avc1.640028, mp4a.40.2"'), ...extra,
        });
        const moved = () => video.currentTime > start + 0.2;
        video.addEventListener("timeupdate", () => moved() && status({}));
        setTimeout(() => status({timedOut: true}), 5000);
        video.play().catch((e) => status({playError: String(e)}));
        """
    )
    data_url: str = page.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch(document.getElementById("result").src).then((r) => r.blob()).then((blob) => {
          const reader = new FileReader();
          reader.onload = () => done(reader.result);
          reader.readAsDataURL(blob);
        });
        """
    )
    return report, base64.b64decode(data_url.split(",", 1)[1])


def mp4_geometry(data: bytes) -> tuple[int, int, float]:
    """The MP4's video width, height and duration in seconds, decoded with PyAV."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        assert container.duration is not None
        width, height = stream.codec_context.width, stream.codec_context.height
        return width, height, container.duration / av.time_base


def assert_plays(report: dict[str, Any], mp4: bytes) -> None:
    width, height, seconds = mp4_geometry(mp4)
    assert report["h264"] in ("probably", "maybe"), f"this Chromium has no H.264: {report}"
    assert report.get("playError") is None and report["error"] is None, report
    assert not report.get("timedOut"), f"currentTime did not advance: {report}"
    assert report["readyState"] >= 2, report
    assert (report["width"], report["height"]) == (width, height), report
    assert abs(report["duration"] - seconds) < 0.2, report
    assert report["currentTime"] > report["start"], report


def wait_until_done(page: WebDriver) -> None:
    def ended(p: WebDriver) -> bool:
        return (
            p.find_element(By.ID, "download").is_displayed()
            or p.find_element(By.ID, "job-error").is_displayed()
        )

    wait_for(page, ended, "the job did not end")
    assert not page.find_element(By.ID, "job-error").is_displayed(), text_of(page, "job-error")
    assert text_of(page, "job-status").startswith("Done")


def test_the_playground_queues_a_transition_shows_its_progress_and_plays_it(
    env: Env, page: WebDriver, tmp_path: Path
) -> None:
    key = env.make_key(balance_usd=10)
    account = account_of(env, key)
    paste_key(page, key)
    wait_for(page, lambda p: "Key accepted" in text_of(p, "key-status"), "the key was not checked")
    pick_model(page, TRANSITION)
    page.find_element(By.ID, "field-prompt").send_keys("A red kite turns into a blue one")
    for field, value in (("duration", "5s"), ("resolution", "360p"), ("aspect_ratio", "16:9")):
        choose(page, field, value)
    page.find_element(By.ID, "field-image_url").send_keys(
        png_file(tmp_path / "a.png", (200, 40, 40))
    )
    page.find_element(By.ID, "field-end_image_url").send_keys(
        png_file(tmp_path / "b.png", (40, 40, 200))
    )
    priced = {"model": TRANSITION, "resolution": "360p", "aspect_ratio": "16:9", "audio": True}
    wait_for_quote(page, env, {**priced, "duration": "5s"})
    choose(page, "duration", "3s")  # the quote follows the form
    page.find_element(By.ID, "field-audio").click()
    quote = wait_for_quote(page, env, {**priced, "duration": "3s", "audio": False})

    page.find_element(By.ID, "queue-button").click()
    queued = "Queued: 0 jobs ahead"  # retrieve's queue_position, with no worker yet
    wait_for(page, lambda p: queued in text_of(p, "job-status"), "the job was not shown queued")
    assert page.find_element(By.ID, "cancel-button").is_displayed()
    assert 10_000_000 - balance(env, account) == round(quote * 1_000_000)
    supervisor = Supervisor(env.settings, 1)  # only now, so the queued state is seen
    supervisor.start()
    try:
        wait_until_done(page)
    finally:
        supervisor.stop()

    report, played = played_mp4(page)
    queue_id = text_of(page, "job-id").rsplit(" ", 1)[1]
    retrieved = env.post("/video/retrieve", {"model": TRANSITION, "queue_id": queue_id}, key)
    assert retrieved.headers["content-type"] == "video/mp4"
    assert played == retrieved.content
    assert_plays(report, played)
    assert mp4_geometry(played)[:2] == (640, 360)
    link = page.find_element(By.ID, "download")
    assert link.get_attribute("download") == f"{queue_id}.mp4"
    assert (link.get_attribute("href") or "").startswith("blob:")
    assert page.find_element(By.ID, "job-progress").get_attribute("value") == "1"


def test_the_playground_plays_a_private_model_from_its_download_link(
    env: Env, page: WebDriver
) -> None:
    paste_key(page, env.make_key(balance_usd=10))
    pick_model(page, PRIVATE)
    assert "download link" in text_of(page, "model-about")
    page.find_element(By.ID, "field-prompt").send_keys("A lantern in the snow")
    for field, value in (("duration", "1s"), ("resolution", "480p"), ("aspect_ratio", "1:1")):
        choose(page, field, value)
    wait_for_quote(page, env, {"model": PRIVATE, "duration": "1s", "resolution": "480p"})
    supervisor = Supervisor(env.settings, 1)
    supervisor.start()
    try:
        page.find_element(By.ID, "queue-button").click()
        wait_until_done(page)
    finally:
        supervisor.stop()
    report, played = played_mp4(page)
    assert_plays(report, played)
    assert mp4_geometry(played)[:2] == (480, 480)


def test_without_a_key_the_playground_says_so_and_shows_the_servers_errors(
    env: Env, page: WebDriver
) -> None:
    status = text_of(page, "key-status")
    assert "No API key" in status and "paste one" in status
    pick_model(page, TRANSITION)
    assert not page.find_element(By.ID, "queue-button").is_enabled()
    wait_for_quote(page, env, {"model": TRANSITION, "duration": "3s", "resolution": "360p"})

    pick_model(page, "topaz-video-upscale")  # its quote needs a key
    wait_for(page, lambda p: p.find_element(By.ID, "quote-error").is_displayed(), "no quote error")
    assert text_of(page, "quote-error") == (
        "No price: an API key is needed (401). Paste an API key above."
    )
    assert (
        Select(page.find_element(By.ID, "field-upscale_factor")).first_selected_option.text == "2"
    )

    paste_key(page, "vq_not-a-key")
    wait_for(page, lambda p: "refused this key (401)" in text_of(p, "key-status"), "no 401")


def test_a_refused_payment_reads_insufficient_balance_with_the_jobs_price(
    env: Env, page: WebDriver
) -> None:
    broke = paste_new_key(env, page, balance_usd="0.01")
    body = fill_in(page, "runway-gen4-5-text", "A kite")
    wait_for_quote(page, env, unprompted(body))
    page.find_element(By.ID, "queue-button").click()
    refused = env.post("/video/queue", body, broke)
    assert refused.status_code == 402

    lines = refusal(page, "(402)")
    shown = "\n".join(lines)
    assert lines[0] == "The job was not queued: Insufficient balance (402)"
    assert f"This job costs {text_of(page, 'quote')}; the key's account holds less." in shown
    assert "videoqueue credit --key" in shown
    # Venice's own words send the user to venice.ai: not shown, nor any JSON.
    assert refused.json()["error"] not in shown and "venice.ai" not in shown
    assert "{" not in shown and "x402" not in shown
    assert balance(env, account_of(env, broke)) == 10_000


def test_validation_issues_are_shown_under_the_forms_own_labels(
    env: Env, page: WebDriver, tmp_path: Path
) -> None:
    key = paste_new_key(env, page)
    body = fill_in(page, REFERENCES, "Eight kites")
    page.find_element(By.ID, "queue-button").click()  # no image yet: the browser says so
    missing = refusal(page, "Fill in the form first")
    assert len(missing) == 2 and missing[1].startswith("Reference images: ")
    images = [png_file(tmp_path / f"{i}.png", (30 * i, 80, 120)) for i in range(8)]
    page.find_element(By.ID, "field-reference_image_urls").send_keys("\n".join(images))
    wait_for_quote(page, env, unprompted(body))
    page.find_element(By.ID, "queue-button").click()
    refused = env.post("/video/queue", {**body, "reference_image_urls": [png_data_url()] * 8}, key)
    assert refused.status_code == 400
    [issue] = refused.json()["issues"]
    assert issue["path"] == ["reference_image_urls"]

    assert refusal(page, "(400)") == [
        "The job was not queued: the request is not valid (400)",
        f"Reference images: {issue['message']}",  # "Array must contain at most 7 element(s)"
    ]
    assert balance(env, account_of(env, key)) == 10_000_000


def test_a_prompt_the_content_policy_refuses_shows_the_suggested_prompt(
    env: Env, page: WebDriver
) -> None:
    key = paste_new_key(env, page)
    body = fill_in(page, PRIVATE, f"A {BANNED} kite")
    page.find_element(By.ID, "queue-button").click()
    refused = env.post("/video/queue", body, key)
    assert refused.status_code == 422

    assert refusal(page, "(422)") == [
        "The job was not queued: refused by the content policy (422)",
        refused.json()["error"],
        "Suggested prompt: A kite over the dunes",
    ]
    assert balance(env, account_of(env, key)) == 10_000_000


def test_kling_elements_are_sent_one_per_image_as_frontal_views(
    env: Env, page: WebDriver, tmp_path: Path
) -> None:
    key = paste_new_key(env, page)
    account = account_of(env, key)
    # Refused unless both elements arrive: the prompt names the second.
    body = fill_in(page, ELEMENTS, "@Element1 hands a kite to @Element2")
    assert "@Element1" in text_of(page, "hint-elements")
    page.find_element(By.ID, "queue-button").click()  # no visual input yet: not even sent
    assert refusal(page, "Fill in the form first") == [
        "Fill in the form first",
        "Choose at least one of: start image, elements, scene images.",
    ]
    images = [png_file(tmp_path / f"{i}.png", (200, 40 * i, 40)) for i in (1, 2)]
    page.find_element(By.ID, "field-elements").send_keys("\n".join(images))
    quote = wait_for_quote(page, env, unprompted(body))
    page.find_element(By.ID, "queue-button").click()
    wait_for(page, lambda p: "Queued" in text_of(p, "job-status"), "the job was not queued")
    assert not page.find_element(By.ID, "request-error").is_displayed()
    assert 10_000_000 - balance(env, account) == round(quote * 1_000_000)
    elements = {**body, "elements": [{"frontal_image_url": png_data_url()}]}
    one_only = env.post("/video/queue", elements, key)  # what one element would have got
    assert one_only.status_code == 400 and "@Element2" in one_only.json()["error"]


# The bodies of spec §2.4 and §3.1 that the end-to-end tests above cannot provoke, as this
# server or Venice sends them: the status, body and headers; the summary and lines shown.
SHAPES: list[tuple[int, dict[str, Any], dict[str, str], str, list[str]]] = [
    (401, {"error": "Authentication failed"}, {}, "the API key was refused",
     ["Authentication failed", "Check the API key above."]),
    (402, {"x402Version": 2, "error": "Authentication required", "accepts": [
        {"scheme": "exact", "network": "eip155:8453", "amount": "10000000"}]}, {},
     "an API key is needed",
     ["Paste an API key above: this page pays with a key's balance, not a wallet."]),
    (402, {"error": "Payment required", "code": "PAYMENT_REQUIRED",
           "reason": "insufficient_balance", "message": "Insufficient x402 balance",
           "currentBalanceUsd": 0.04, "minimumBalanceUsd": 0.1}, {}, "Insufficient balance",
     ["The balance is $0.04; $0.10 is needed.", "This job costs $0.40; the key's account "
      "holds less.", "The operator adds credit with `videoqueue credit --key KEY_ID AMOUNT_USD`."]),
    (402, {"error": "API key USD spend limit exceeded. Raise the key's consumption limit."}, {},
     "the API key's spend limit is reached",
     ["API key USD spend limit exceeded. Raise the key's consumption limit."]),
    (409, {"error": {"code": "needs_consent", "message": "Seedance consent is required."},
           "consent_flow": "seedance"}, {}, "the model needs consent for the faces in its inputs",
     ["Seedance consent is required.",
      "The playground cannot give it: send `consents` through the API."]),
    (422, {"error": {"message": "The provider rejected this request.",
                     "type": "provider_content_policy", "recommended_model": "wan-2-7",
                     "credits_refunded": True}}, {}, "refused by the content policy",
     ["The provider rejected this request.", "Try wan-2-7 instead.", "The charge was refunded."]),
    (422, {"error": "The media is too long"}, {}, "an input was refused",
     ["The media is too long"]),
    (429, {"error": "Rate limit exceeded", "code": "RATE_LIMIT_EXCEEDED"}, {"Retry-After": "17"},
     "too many requests", ["Rate limit exceeded", "Try again in 17 s."]),
    (500, {"error": "An unknown error occurred", "code": "UNKNOWN_ERROR", "request_id": "r1"}, {},
     "the server failed", ["An unknown error occurred", "Request id: r1."]),
]  # fmt: skip


def test_each_error_shape_of_the_spec_is_told_in_words(page: WebDriver) -> None:
    for status, body, headers, summary, lines in SHAPES:
        described = page.execute_async_script(
            """
            const [status, body, headers, done] = arguments;
            const response = new Response(JSON.stringify(body), {status, headers});
            const known = {hasKey: true, quoteUsd: 0.4, label: () => null};
            describeFailure(response, known).then(done, (e) => done(String(e)));
            """,
            status,
            body,
            headers,
        )
        assert described == {"summary": summary, "lines": lines}, (status, body)
