"""The operations dashboard (GET / on the projector's HTTP port) in headless Chromium.

Debian's chromium, driven through Debian's chromedriver by selenium (nothing is
downloaded: scripts/test installs both packages when they are missing), loads the
dashboard of a ledger of this module's own (its own broker and `loanctl up`, since the
foreign-client story needs a ledger that nobody else has fed) while `loanctl feed`
publishes a generated portfolio. While the feed runs, every figure the page shows must
be the figure of the /v1/portfolio answer it drew; once it is done, the page (which
refreshes itself every 2 s) must show exactly what /v1/portfolio answers now: every
figure, the overdue principal of every bucket, one bar of the income chart per day
closed. A searched loan shows its statement, entry for entry as /v1/loans/{id}/history
has it, and its payoff; a searched borrower shows its loans; the bucket filter narrows
the queue to /v1/overdue?bucket=.

Screenshots (PNG) go to $DASHBOARD_SCREENSHOTS when it names a folder (README's
pictures in docs/ are made so), else to the test's temporary folder.
"""

import os
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import kafka_broker, running_ledger, tail

# A generated portfolio with overdue principal in every bucket (NPL too).
MERCHANTS, DAYS, SEED = 200, 120, 3
FIGURES = [
    "outstanding_principal", "active_loans", "borrowers", "loans_disbursed", "amount_disbursed", "interest_income",
    "penalty_income", "written_off_principal", "npl_ratio", "settled_loans", "average_days_outstanding",
]
BUCKETS = ["M1", "M2", "M3", "NPL"]

# Everything the page shows, read in one script (the page cannot redraw in between).
SHOWN = """
const text = (sel) => Array.from(document.querySelectorAll(sel));
return {
  figures: Object.fromEntries(text('[data-figure]').map((e) => [e.dataset.figure, e.textContent])),
  buckets: Object.fromEntries(text('[data-bucket]').map((e) => [e.dataset.bucket, e.textContent])),
  business_date: document.getElementById('business-date').textContent,
  days: text('#income-chart g[data-date]').map((g) => g.dataset.date),
  drawn: window.dashboard.portfolio,
  refreshes: window.dashboard.refreshes,
  banner: document.getElementById('banner').hidden ? null : document.getElementById('banner').textContent,
};
"""


# The loan ids of the overdue queue's rows, in order.
QUEUE = "return Array.from(document.querySelectorAll('#queue tbody tr')).map((r) => r.dataset.loan);"


def chromium_paths():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.fail("Debian's chromium and chromium-driver are not installed (scripts/test installs them: apt-get install chromium chromium-driver)")
    return browser, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    binary, driver_path = chromium_paths()
    options = Options()
    options.binary_location = binary
    # As root Chromium needs --no-sandbox; the network is closed, so nothing in the
    # background may try to reach it.
    for arg in ("--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-gpu",
                "--disable-dev-shm-usage", "--disable-extensions", "--no-first-run", "--window-size=1400,1800",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(arg)
    log = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    driver = webdriver.Chrome(service=Service(executable_path=driver_path, log_output=str(log)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def own_ledger(loanctl_bin, tmp_path_factory):
    with kafka_broker(tmp_path_factory.mktemp("kafka-dashboard")) as brokers:
        with running_ledger(loanctl_bin, brokers, tmp_path_factory.mktemp("ledger-dashboard")) as ledger:
            yield ledger


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    folder = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def plain(text):
    """A figure as the page shows it, its digits' grouping taken out."""
    return text.replace(",", "")


def figures_of(portfolio):
    return {key: str(portfolio[key]) for key in FIGURES}


def assert_shows(shown, portfolio, where):
    assert shown["banner"] is None, f"{where}: the page shows an error: {shown['banner']}"
    assert {k: plain(v) for k, v in shown["figures"].items()} == figures_of(portfolio), where
    assert {k: plain(v) for k, v in shown["buckets"].items()} == portfolio["overdue_principal"], where
    assert shown["business_date"] == (portfolio["business_date"] or "not opened"), where
    assert shown["days"] == [d["date"] for d in portfolio["income_by_day"]], where


def test_the_dashboard_follows_a_feed_and_shows_what_the_api_answers(own_ledger, browser, screenshots, tmp_path):
    scenario = tmp_path / "portfolio.jsonl"
    scenario.write_text(own_ledger.loanctl("generate", "--merchants", str(MERCHANTS), "--days", str(DAYS), "--seed", str(SEED), brokers=False))
    browser.get(own_ledger.api + "/")
    own_ledger.wait(lambda: browser.execute_script(SHOWN)["refreshes"] >= 1, "the dashboard drew the empty ledger")

    feed_log = tmp_path / "feed.log"
    with open(feed_log, "wb") as log:
        feed = subprocess.Popen([own_ledger.loanctl_bin, "feed", "--brokers", own_ledger.brokers, str(scenario)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    # During the feed: each redraw shows exactly the answer it drew, and the figures move.
    during = []
    try:
        while feed.poll() is None:
            shown = browser.execute_script(SHOWN)
            if shown["drawn"] is not None and (not during or shown["refreshes"] != during[-1]["refreshes"]):
                assert_shows(shown, shown["drawn"], f"redraw {shown['refreshes']} during the feed")
                during.append(shown)
            time.sleep(0.3)
    finally:
        if feed.poll() is None:
            feed.kill()
    assert feed.wait() == 0, f"loanctl feed failed:\n{tail(feed_log)}"
    disbursed = [int(s["figures"]["loans_disbursed"].replace(",", "")) for s in during]
    assert len(during) >= 2 and disbursed[-1] > disbursed[0], f"the dashboard did not follow the feed: loans disbursed {disbursed}"

    # After it: what /v1/portfolio answers, figure for figure.
    portfolio = own_ledger.get("/v1/portfolio")
    assert portfolio["income_by_day"] and portfolio["loans_disbursed"] > 0, portfolio

    def shows_the_portfolio():
        shown = browser.execute_script(SHOWN)
        return shown if shown["drawn"] == portfolio else None

    shown = own_ledger.wait(shows_the_portfolio, "the dashboard drew the portfolio after the feed", timeout=20)
    assert_shows(shown, portfolio, "after the feed")
    assert all(portfolio["overdue_principal"][b] != "0.00" for b in BUCKETS), portfolio["overdue_principal"]
    browser.save_screenshot(str(screenshots / "dashboard.png"))

    # The queue's bucket filter is /v1/overdue?bucket=.
    for bucket in ("M2", ""):
        Select(browser.find_element(By.ID, "queue-bucket")).select_by_value(bucket)
        expected = own_ledger.get("/v1/overdue" + (f"?bucket={bucket}" if bucket else ""))
        expected_ids = [l["loan_id"] for l in expected["loans"][:200]]
        own_ledger.wait(lambda: browser.execute_script(QUEUE) == expected_ids, f"the queue shows bucket {bucket or 'every bucket'}")
        assert browser.find_element(By.ID, "queue-count").text.startswith(f"{expected['count']} overdue loan")


def search(browser, text):
    box = browser.find_element(By.ID, "search-id")
    box.clear()
    box.send_keys(text)
    browser.find_element(By.CSS_SELECTOR, "#search button").click()


def test_a_searched_loan_shows_its_statement_and_a_borrower_its_loans(own_ledger, browser, screenshots):
    # The overdue loan with the longest statement: disbursement, accruals, overdue notices.
    overdue = own_ledger.get("/v1/overdue")["loans"]
    assert overdue, "the feed left no overdue loan"
    loan = max(overdue, key=lambda l: (l["dpd"], l["loan_id"]))
    quoted = urllib.parse.quote(loan["loan_id"], safe="")
    history = own_ledger.get(f"/v1/loans/{quoted}/history")
    payoff = own_ledger.get(f"/v1/loans/{quoted}/payoff")

    search(browser, loan["loan_id"])
    rows = own_ledger.wait(lambda: browser.execute_script(
        "const t = document.querySelector('#statement');"
        "return t && t.dataset.loan === arguments[0] ? Array.from(t.querySelectorAll('tbody tr')).map((r) => Array.from(r.cells).map((c) => c.textContent)) : null;",
        loan["loan_id"]), "the statement is shown")
    columns = ["date", "kind", "reference", "principal_disbursed", "interest_charged", "penalty_charged", "amount",
               "penalty_paid", "interest_paid", "principal_paid", "principal_outstanding", "total_owed", "dpd", "bucket"]
    expected = [[("" if e[c] is None else str(e[c])) for c in columns] for e in history["entries"]]
    assert [[plain(cell) for cell in row] for row in rows] == expected
    kinds = {e["kind"] for e in history["entries"]}
    assert {"DISBURSEMENT", "ACCRUAL", "LOAN_OVERDUE"} <= kinds, kinds
    payoff_text = browser.find_element(By.ID, "payoff").text
    assert plain(payoff_text).startswith(f"Payoff on {payoff['date']}: {payoff['total']}"), payoff_text
    assert browser.current_url.endswith("#q=" + quoted)
    browser.execute_script("document.getElementById('search-title').scrollIntoView()")
    browser.save_screenshot(str(screenshots / "dashboard-loan.png"))

    # Its borrower: the borrower's view and every loan of it.
    borrower = own_ledger.get(f"/v1/borrowers/{urllib.parse.quote(loan['borrower_id'], safe='')}")
    search(browser, loan["borrower_id"])
    shown = own_ledger.wait(lambda: browser.execute_script(
        "const r = document.querySelector('[data-result=borrower]');"
        "return r ? Array.from(r.querySelectorAll('#borrower-loans tbody tr')).map((row) => row.cells[0].textContent) : null;"), "the borrower is shown")
    assert shown == [l["loan_id"] for l in borrower["loans"]]

    # An id that names nothing says so.
    search(browser, "NO-SUCH-ID")
    own_ledger.wait(lambda: browser.find_elements(By.CSS_SELECTOR, "[data-result=none]"), "the page says nothing has that id")
