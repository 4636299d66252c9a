"""The workbench in a real browser: Selenium driving Debian's chromium (headless) against a live
server on the demo. Screenshots of every page go to var/screenshots/.

Locally these skip, with one line, when chromium or chromedriver is missing (`make browser`
installs them); CI sets SIGMASIGHT_BROWSER_REQUIRED and they must run there.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from modeling import demo
from modeling.limit_models import Breach
from modeling.models import Report
from portfolios.models import Portfolio, Position
from sigmasight.accounts.models import User
from sigmasight.tests.helpers import client_for

# Transactional: the live server reads what the test commits (`reference_data` seeds again what
# an earlier transactional test's flush took).
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
SHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
WAIT_S = 20


@pytest.fixture(scope="module")
def webdriver_module():
    if not (CHROMIUM and DRIVER):
        message = "browser tests: chromium or chromedriver missing (`make browser` installs them)"
        if os.environ.get("SIGMASIGHT_BROWSER_REQUIRED"):
            pytest.fail(message)
        pytest.skip(message)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager never downloads a driver
    from selenium import webdriver

    return webdriver


@pytest.fixture
def browser(webdriver_module, tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver_module.Chrome(service=Service(DRIVER), options=options)
    driver.set_window_size(1280, 1000)
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture
def demo_live(settings, eager_celery, reference_data, live_server):
    settings.SIGMASIGHT_MARKET_DATA_SOURCE = "synthetic"
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    books = {}
    for book in demo.BOOKS:
        user = User.objects.get(email=book.email)
        books[book.key] = (user, Portfolio.objects.get(owner=user))
    return live_server.url, books


# What runs past the right edge, for the assertion's message.
WIDEST = """return Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right));"""


def shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def wait_for(driver, condition, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            found = condition(driver)
        except Exception:  # noqa: BLE001  # not there yet (stale element, missing node)
            found = None
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def sign_in(driver, url: str, email: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "/")
    driver.find_element(By.ID, "id_email").send_keys(email)
    driver.find_element(By.ID, "id_password").send_keys(demo.demo_password())
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(
        driver, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-field=equity]"), "the overview"
    )


def test_sign_in_overview_upload_and_report(demo_live, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, books = demo_live
    user, portfolio = books["growth"]
    browser.get(url + "/")
    assert "Sign in to SigmaSight" in browser.page_source
    shot(browser, "signin")
    assert browser.switch_to.active_element.get_attribute("id") == "id_email"  # autofocus
    sign_in(browser, url, user.email)
    # Keyboard first: Tab reaches the skip link before anything else; Enter lands in the page.
    ActionChains(browser).send_keys(Keys.TAB).perform()
    active = browser.switch_to.active_element
    assert active.get_attribute("class") == "skip", active.get_attribute("outerHTML")
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    assert browser.switch_to.active_element.get_attribute("id") == "main"

    # The overview's equity is the API's, and the chart was drawn.
    summary = client_for(user).get(f"/api/v1/portfolios/{portfolio.pk}/summary/").json()
    equity = browser.find_element(By.CSS_SELECTOR, "[data-field=equity]")
    assert equity.get_attribute("data-value") == summary["equity"]
    assert equity.text == f"{float(summary['equity']):,.2f}".replace("-", "\u2212")
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".plot canvas"), "the chart")
    assert browser.find_element(By.ID, "data-quality").is_displayed()
    shot(browser, "overview")

    # Every page of the book opens; each is photographed.
    for name in ("positions", "risk", "stress", "whatif", "reports"):
        browser.get(f"{url}/portfolios/{portfolio.pk}/{name}/")
        assert browser.find_element(By.TAG_NAME, "h1").is_displayed()
        assert "Not found" not in browser.title
        shot(browser, name)
    browser.get(url + "/alerts/")
    shot(browser, "alerts")
    # 768 pixels wide: the page itself never runs off the side (wide tables scroll in place).
    browser.set_window_size(768, 1000)
    for name in ("", "positions/", "risk/", "stress/", "whatif/", "reports/"):
        browser.get(f"{url}/portfolios/{portfolio.pk}/{name}")
        width = browser.execute_script("return document.documentElement.scrollWidth")
        wide = browser.execute_script(WIDEST)
        assert width <= browser.execute_script("return window.innerWidth"), (name, wide)
    shot(browser, "overview-768")
    browser.set_window_size(1280, 1000)

    # A CSV with a bad row: the row's error is shown, nothing is written.
    before = Position.objects.filter(portfolio=portfolio).count()
    bad = Path(browser.downloads) / "book.csv"
    bad.write_text(
        "symbol,quantity,entry_price,entry_date\nAAPL,10,150,2024-01-02\nMSFT,ten,300,2024-01-02\n"
    )
    browser.get(f"{url}/portfolios/{portfolio.pk}/positions/")
    browser.find_element(By.ID, "upload-file").send_keys(str(bad))
    browser.find_element(By.CSS_SELECTOR, "#upload-form button[type=submit]").click()
    errors = wait_for(
        browser, lambda d: d.find_element(By.ID, "upload-errors"), "the upload errors"
    )
    assert "Nothing was written." in errors.text
    assert "3" in errors.text and "quantity" in errors.text
    assert Position.objects.filter(portfolio=portfolio).count() == before
    shot(browser, "positions-upload-error")

    # A report: generated, its status followed on the page, downloaded.
    browser.get(f"{url}/portfolios/{portfolio.pk}/reports/")
    browser.find_element(By.CSS_SELECTOR, "#r-format option[value=csv]").click()
    browser.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
    link = wait_for(
        browser, lambda d: d.find_element(By.LINK_TEXT, "Download"), "the download link"
    )
    link.click()
    files = wait_for(
        browser,
        lambda d: [p for p in Path(d.downloads).glob("*.csv") if p.name != "book.csv"],
        "the file",
    )
    report = Report.objects.get(owner=user)
    assert report.status == Report.Status.DONE
    with report.file.open("rb") as handle:
        assert files[0].read_bytes() == handle.read()
    shot(browser, "reports-done")


def test_what_if_and_acknowledging_a_breach(demo_live, browser):
    from selenium.webdriver.common.by import By

    url, books = demo_live
    user, portfolio = books["growth"]
    sign_in(browser, url, user.email)

    browser.get(f"{url}/portfolios/{portfolio.pk}/whatif/")
    browser.find_element(By.ID, "w-name").send_keys("Hedge check")
    browser.find_element(By.CSS_SELECTOR, "form.inline button[type=submit]").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "trade-form"), "the session")
    browser.find_element(By.ID, "t-symbol").send_keys("SPY")
    browser.find_element(By.ID, "t-qty").send_keys("-100")
    browser.find_element(By.CSS_SELECTOR, "#trade-form button[type=submit]").click()
    change = wait_for(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, "[data-field='change.exposures.gross']"),
        "the impacts",
    )
    session_id = int(browser.current_url.rstrip("/").rsplit("/", 1)[1])
    impacts = client_for(user).get(f"/api/v1/modeling/sessions/{session_id}/impacts/").json()
    assert change.get_attribute("data-value") == impacts["change"]["exposures"]["gross"]
    assert float(impacts["change"]["exposures"]["gross"]) != 0
    shot(browser, "whatif-session")

    # The demo's hard breach, acknowledged from the alerts page (htmx swaps the row).
    breach = Breach.objects.get(portfolio=portfolio, status=Breach.Status.OPEN)
    browser.get(url + "/alerts/")
    row = browser.find_element(By.ID, f"breach-{breach.pk}")
    row.find_element(By.TAG_NAME, "button").click()
    wait_for(
        browser,
        lambda d: "acknowledged" in d.find_element(By.ID, f"breach-{breach.pk}").text,
        "the acknowledged row",
    )
    breach.refresh_from_db()
    assert breach.status == Breach.Status.ACKNOWLEDGED
    body = client_for(user).get("/api/v1/breaches/?status=acknowledged").json()
    assert [b["id"] for b in body["results"]] == [breach.pk]


def test_another_user_cannot_reach_the_first_users_pages_and_staff_see_operations(
    demo_live, browser
):
    from selenium.webdriver.common.by import By

    url, books = demo_live
    (_, first), (other, _) = books["growth"], next(v for k, v in books.items() if k != "growth")
    sign_in(browser, url, other.email)
    for path in ("", "positions/", "risk/", "stress/", "whatif/", "reports/"):
        browser.get(f"{url}/portfolios/{first.pk}/{path}")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Not found", path
    browser.get(url + "/operations/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
    browser.find_element(By.CSS_SELECTOR, "form button.link").click()  # sign out
    wait_for(browser, lambda d: d.find_element(By.ID, "id_email"), "the sign-in page")

    _staff_sign_in(browser, url)
    browser.get(url + "/operations/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Operations"
    assert browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")
    shot(browser, "operations")


def _staff_sign_in(driver, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "/signin/")
    driver.find_element(By.ID, "id_email").send_keys(demo.ADMIN_EMAIL)
    driver.find_element(By.ID, "id_password").send_keys(demo.demo_password())
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    # Signed in when the landing page is there (staff own no book: the empty page), not when
    # any heading is (the sign-in page's own would race the form's navigation).
    wait_for(
        driver,
        lambda d: d.find_element(By.TAG_NAME, "h1").text == "No portfolio yet",
        "the admin's landing page",
    )
