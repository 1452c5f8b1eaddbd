"""The demo page in headless Chromium: the page loads with nothing fetched from elsewhere, a
stroke changes the translation, "New sample" draws another one in paper mode and eval mode
repeats itself, a 300x500 upload gives a 300x500 result, and a non-image upload is answered
in the page with the next upload still working.

Needs Debian's chromium and chromium-driver (`.ci/run` installs them); skipped, naming them,
when they are absent, except under CI=true, where that is a failure.
"""

import io
import os
import pathlib
import shutil
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from test_demo import free_port, label_run

pytest.importorskip('gradio', reason='the demo tests need the demo extra (gradio)')
webdriver = pytest.importorskip('selenium.webdriver',
                                reason='the browser tests need selenium (the test extra)')
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

BROWSERS = ('chromium', 'chromium-browser', 'google-chrome')
# Where a test run leaves its screenshot of the page ($P2P_TF_DEMO_SCREENSHOT, else nowhere).
SCREENSHOT_ENV = 'P2P_TF_DEMO_SCREENSHOT'


def find_browser():
    browser = next(filter(None, map(shutil.which, BROWSERS)), None)
    driver = shutil.which('chromedriver')
    if browser and driver:
        return browser, driver
    message = ('needs chromium and chromium-driver (apt-get install chromium chromium-driver); '
               f'found browser={browser}, driver={driver}')
    if os.environ.get('CI') == 'true':
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope='module')
def page_url(tmp_path_factory):
    from p2p_tf.serving import demo_app
    workdir, data = label_run(tmp_path_factory.mktemp('demo_browser'))
    page, url = demo_app.serve(workdir, port=free_port(), data_dir=data, block=False)
    yield url
    page.close()


@pytest.fixture(scope='module')
def browser():
    binary, driver_path = find_browser()
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
                     '--window-size=1400,1100'):
        options.add_argument(argument)
    options.set_capability('goog:loggingPrefs', {'performance': 'ALL'})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def wait_for(condition, timeout=60, what='the page'):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = condition()
        except Exception:  # noqa: BLE001  (the page is re-rendering)
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f'timed out waiting for {what}')


class Page:
    """The demo page as a user sees it."""

    def __init__(self, driver):
        self.driver = driver

    def text(self, element_id):
        return self.driver.find_element(By.ID, element_id).text

    def result(self, output_id):
        """(image URL, status text) once the output shows a finished translation."""
        status_id = output_id.replace('output', 'status')
        images = self.driver.find_elements(By.CSS_SELECTOR, f'#{output_id} img')
        status = self.text(status_id)
        # While a request waits or runs, Gradio puts its queue or timer line first.
        if not images or not status.startswith(('Translated', 'Not translated')):
            return None
        return images[0].get_attribute('src'), status

    def next_result(self, output_id, previous, what):
        """The first finished result whose answer differs from `previous` (each answer's
        status is numbered)."""
        return wait_for(lambda: (lambda now: now if now and now[1] != (previous or ('', ''))[1]
                                 else None)(self.result(output_id)), what=what)

    def settled(self, output_id, previous, what, quiet=1.0):
        """The newest answer after `previous` once no other has come for `quiet` seconds
        (a stroke sends the canvas several times)."""
        answer = self.next_result(output_id, previous, what)
        while True:
            time.sleep(quiet)
            latest = wait_for(lambda: self.result(output_id), what=what)
            if latest == answer:
                return answer
            answer = latest

    def canvas(self):
        return self.driver.find_element(By.CSS_SELECTOR, 'canvas.p2p-drawing')

    def click_label(self, text):
        self.driver.find_element(By.XPATH, f"//label[contains(., '{text}')]").click()


def pixels(url):
    with urllib.request.urlopen(url) as response:
        return np.asarray(Image.open(io.BytesIO(response.read())))


def test_the_page_draws_samples_and_translates_uploads(page_url, browser, tmp_path):
    page = Page(browser)
    browser.get(page_url)
    first = page.settled('p2p-drawing-output', None, 'the example translated')
    assert 'Translated the drawing, 40x40, paper mode, sample 0' in first[1]
    model = page.text('p2p-model')
    assert 'folder' in model and 'BtoA' in model and 'step 2' in model and '32x32' in model
    classes = browser.find_elements(By.CSS_SELECTOR, '.p2p-class')
    assert len(classes) >= 3 and all('class' in button.text for button in classes)

    # A stroke in a label colour changes the translation.
    classes[2].click()
    ActionChains(browser).move_to_element_with_offset(page.canvas(), -150, -150) \
        .click_and_hold().move_by_offset(200, 120).move_by_offset(60, 120).release().perform()
    stroked = page.settled('p2p-drawing-output', first, 'the stroke translated')
    assert np.abs(pixels(stroked[0]).astype(int) - pixels(first[0])).max() > 0

    # Paper mode: "New sample" draws another output; eval mode gives the same one twice.
    browser.find_element(By.ID, 'p2p-new-sample').click()
    sampled = page.next_result('p2p-drawing-output', stroked, 'a new sample')
    assert 'sample 1' in sampled[1]
    assert np.abs(pixels(sampled[0]).astype(int) - pixels(stroked[0])).max() > 0
    page.click_label('eval: deterministic')
    evaluated = page.next_result('p2p-drawing-output', sampled, 'eval mode')
    assert 'eval mode' in evaluated[1]
    browser.find_element(By.ID, 'p2p-new-sample').click()
    again = page.next_result('p2p-drawing-output', evaluated, 'eval mode again')
    assert 'eval mode' in again[1]
    np.testing.assert_array_equal(pixels(again[0]), pixels(evaluated[0]))

    # Upload: a non-image is answered in the page, then a 300x500 image gives 300x500.
    browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Upload')]").click()
    not_image = tmp_path / 'notes.png'
    not_image.write_text('not an image')
    upload = wait_for(lambda: browser.find_element(By.CSS_SELECTOR,
                                                   '#p2p-upload input[type=file]'))
    upload.send_keys(str(not_image))
    status = wait_for(lambda: 'Not translated' in page.text('p2p-upload-status') and
                      page.text('p2p-upload-status'), what='the refusal')
    assert 'not an image this demo can read' in status
    browser.find_element(By.CSS_SELECTOR, '#p2p-upload button[aria-label="Clear"]').click()
    picture = tmp_path / 'portrait.png'
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (500, 300, 3), np.uint8)).save(
        picture)
    wait_for(lambda: browser.find_element(By.CSS_SELECTOR, '#p2p-upload input[type=file]')
             ).send_keys(str(picture))
    result = wait_for(lambda: 'portrait.png' in page.text('p2p-upload-status') and
                      page.result('p2p-upload-output'), what='the upload translated')
    assert 'Translated portrait.png, 300x500, eval mode' in result[1]
    assert pixels(result[0]).shape == (500, 300, 3)
    image = browser.find_element(By.CSS_SELECTOR, '#p2p-upload-output img')
    assert (image.get_property('naturalWidth'), image.get_property('naturalHeight')) == (300, 500)

    if os.environ.get(SCREENSHOT_ENV):
        pathlib.Path(os.environ[SCREENSHOT_ENV]).parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(os.environ[SCREENSHOT_ENV])


def test_the_page_fetches_nothing_from_elsewhere(page_url, browser):
    import json
    browser.get_log('performance')  # Drop what earlier tests logged.
    browser.get(page_url)
    wait_for(lambda: Page(browser).result('p2p-drawing-output'), what='the page')
    requested = set()
    for entry in browser.get_log('performance'):
        message = json.loads(entry['message'])['message']
        if message['method'] == 'Network.requestWillBeSent':
            requested.add(message['params']['request']['url'])
    assert requested, 'no request was logged'
    elsewhere = sorted(url for url in requested
                       if not url.startswith((page_url, 'data:', 'blob:')))
    assert elsewhere == []
