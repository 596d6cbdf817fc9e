"""In real Chromium: every page and tab at a phone's 390 x 844 over a week of use (screenshots kept in
$ARCHSCOPE_SCREENSHOTS when set), with no exception, nothing wider than the screen, no chart title on
top of an axis title or legend, and no text clipped (cut by its box, outside its chart or plot area,
labels on labels); and the recommender updating in place when its own measuring job ends."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from benchmarks.harness import full_screenshot, serve, wait_idle

pytestmark = pytest.mark.e2e
PHONE = {"width": 390, "height": 844}
PAGES = [
    "/",
    "/?blocks.tab=Compare",
    "/?blocks.tab=Roofline",
    "/?blocks.tab=Deploy",
    "/?blocks.tab=Lecture%27s+numbers",
    "/?blocks.tab=Gradient+flow",
    "/backbones",
    "/backbones?bb.tab=Leaderboard",
    "/backbones?bb.tab=Accuracy+vs+cost",
    "/backbones?bb.tab=Throughput",
    "/backbones?bb.tab=Where+the+time+goes",
    "/backbones?bb.tab=Recommender",
    "/backbones?bb.tab=Deployment",
    "/transfer",
    "/runs",
    "/runs?runs.tab=Effect+of+freezing+depth",
    "/runs?runs.tab=Evaluate+and+export",
]

# the boxes of each chart's title, axis titles and legend, and every pair of them that overlaps
OVERLAPS = """() => {
  const out = [];
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const boxes = [...plot.querySelectorAll('.gtitle, .xtitle, .ytitle, .legend, .annotation')]
      .map(e => [e.getAttribute('class') + ':' + (e.textContent || '').slice(0, 30),
                 e.getBoundingClientRect()])
      .filter(([, r]) => r.width > 0 && r.height > 0);
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const [a, r] = boxes[i], [b, s] = boxes[j];
      const w = Math.min(r.right, s.right) - Math.max(r.left, s.left);
      const h = Math.min(r.bottom, s.bottom) - Math.max(r.top, s.top);
      if (w > 2 && h > 2) out.push(a + ' / ' + b);
    }
  }
  return out;
}"""
# with the pointer on a chart: its toolbar's box against its title's and subplot titles' boxes
TOOLBAR_CLASH = """plot => {
  const bar = plot.querySelector('.modebar');
  if (!bar || !bar.getBoundingClientRect().width) return [];
  const r = bar.getBoundingClientRect();
  return [...plot.querySelectorAll('.gtitle, .annotation')]
    .map(e => [e.textContent, e.getBoundingClientRect()])
    .filter(([, s]) => Math.min(r.right, s.right) - Math.max(r.left, s.left) > 1
                    && Math.min(r.bottom, s.bottom) - Math.max(r.top, s.top) > 1).map(([t]) => t);
}"""
# text that does not show whole: an HTML element cut by its own box (overflow hidden or an ellipsis), a
# chart's text outside its chart, a point or bar label outside the plot area that clips it, and point labels
# on each other
CLIPPED = """() => {
  const out = [], inside = (r, box) => r.left >= box.left - 1 && r.right <= box.right + 1
                                        && r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
  const name = e => (e.textContent || '').trim().slice(0, 40);
  for (const e of document.querySelectorAll("[data-testid='stMain'] *")) {
    if (!e.offsetParent || !e.childNodes.length
        || e.closest('.js-plotly-plot, [data-testid="stDataFrame"]')) continue;
    if (![...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const cs = getComputedStyle(e);
    const cut = cs.textOverflow === 'ellipsis' || ['hidden', 'clip'].includes(cs.overflowX);
    if (cut && e.scrollWidth > e.clientWidth + 1) out.push('text cut: ' + name(e));
  }
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const svg = plot.querySelector('.main-svg');
    if (!svg || !svg.getBoundingClientRect().width) continue;
    const whole = svg.getBoundingClientRect();
    for (const t of plot.querySelectorAll('.gtitle, .xtitle, .ytitle, .legendtext, .annotation-text, '
                                            + '.xtick text, .ytick text, .textpoint text, .bartext')) {
      const r = t.getBoundingClientRect();
      if (r.width && !inside(r, whole)) out.push('outside its chart: ' + name(t));
    }
    for (const sub of plot.querySelectorAll('.cartesianlayer > .subplot')) {
      const id = [...sub.classList].find(c => c !== 'subplot');
      const drag = plot.querySelector('.draglayer .' + id + ' .nsewdrag');
      if (!drag) continue;
      const area = drag.getBoundingClientRect();
      const labels = [...sub.querySelectorAll('.textpoint text, .bartext')].filter(t => t.textContent.trim()
        && t.closest('[clip-path]') && t.getBoundingClientRect().width);
      for (const t of labels) {
        if (!inside(t.getBoundingClientRect(), area)) out.push('clipped by the plot: ' + name(t));
      }
      const boxes = [...sub.querySelectorAll('.textpoint text')]
        .map(t => [name(t), t.getBoundingClientRect()])
        .filter(([, r]) => r.width);
      for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
        const [a, r] = boxes[i], [b, q] = boxes[j];
        if (Math.min(r.right, q.right) - Math.max(r.left, q.left) > 2
            && Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top) > 2) {
          out.push('labels overlap: ' + a + ' / ' + b);
        }
      }
    }
  }
  return out;
}"""
# every Markdown table whose right edge runs past the block that holds it (a wide table is cut at the phone's
# edge)
TABLES_PAST_THEIR_BLOCK = """() => [...document.querySelectorAll("[data-testid='stMain'] table")]
  .filter(t => t.offsetParent && t.getBoundingClientRect().right >
          t.closest("[data-testid='stVerticalBlock']").getBoundingClientRect().right + 1)
  .map(t => (t.textContent || '').trim().slice(0, 40))"""

WIDEST = """() => Math.max(document.querySelector("[data-testid='stMain']").scrollWidth,
  ...[...document.querySelectorAll('.js-plotly-plot')].map(p => p.getBoundingClientRect().right))"""


@pytest.fixture(scope="module")
def week_url(seeded_dir):
    with serve(seeded_dir) as url:
        yield url


def toolbar_clear(page) -> None:
    for plot in page.locator(".js-plotly-plot:visible").all()[:6]:  # (a chart for the other width is hidden)
        plot.scroll_into_view_if_needed()
        plot.hover()
        page.wait_for_timeout(200)
        assert plot.evaluate(TOOLBAR_CLASH) == [], "the toolbar covers a title"


@pytest.mark.parametrize("path", ["/?blocks.tab=Compare", "/runs", "/backbones?bb.tab=Accuracy+vs+cost"])
def test_at_desktop_width_the_toolbar_never_covers_a_title(browser, week_url, path):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(180_000)
    page.goto(week_url + path)
    wait_idle(page)
    page.wait_for_timeout(1500)
    toolbar_clear(page)
    assert page.evaluate(OVERLAPS) == [] and page.locator("[data-testid='stException']").count() == 0
    assert page.evaluate(CLIPPED) == []
    context.close()


@pytest.mark.parametrize("path", PAGES)
def test_every_page_reads_at_phone_width(browser, week_url, path, tmp_path):
    context = browser.new_context(viewport=PHONE, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(180_000)
    page.goto(week_url + path)
    wait_idle(page)
    page.wait_for_timeout(1500)  # Plotly lays out after the script run
    wait_idle(page)
    folder = Path(os.environ.get("ARCHSCOPE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    full_screenshot(page, folder / f"phone{re.sub(r'[^A-Za-z0-9]+', '_', path)}.png")
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.evaluate(WIDEST) <= PHONE["width"] + 1, "something is wider than the phone's screen"
    assert page.evaluate(OVERLAPS) == []
    assert page.evaluate(CLIPPED) == [], "text that does not show whole"
    assert page.evaluate(TABLES_PAST_THEIR_BLOCK) == []
    toolbar_clear(page)
    context.close()


def test_the_transfer_forms_tables_fit_a_phone_inside_a_runs_expander(browser, week_url):
    """A run's view holds the form in an expander, whose border and padding leave the tables less room."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(180_000)
    page.goto(week_url + "/transfer?run=1")
    wait_idle(page)
    page.get_by_text("Start another run").click()
    wait_idle(page)
    expect(page.locator("[data-testid='stExpander'] table")).to_have_count(2)  # class counts, stage LRs
    assert page.evaluate(TABLES_PAST_THEIR_BLOCK) == [] and page.evaluate(CLIPPED) == []
    context.close()


def test_the_recommender_updates_in_place_when_its_measuring_job_ends(page, app_url):
    page.goto(f"{app_url}/backbones?bb.tab=Recommender")
    wait_idle(page)
    page.get_by_role("combobox", name="Scenario").click()
    page.get_by_role("option", name="Edge / real-time").click()
    wait_idle(page)
    page.get_by_text("This machine can download from the hub").click()  # offline, the pick is Lite0
    wait_idle(page)
    budget = page.get_by_role("spinbutton", name=re.compile("Latency budget at batch 1"))
    budget.fill("1000")
    budget.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name=re.compile(r"Measure this scenario's candidates")).click()
    expect(page.locator("[data-testid='stProgress']")).to_be_visible(
        timeout=60_000
    )  # progress, not a spinner
    # no reload: the progress fragment reruns the page once the job has ended
    answer = page.locator("[data-testid='stAlert']").filter(has_text="mobilenetv3_large_100")
    expect(answer).to_contain_text("ImageNet-1k top-1 75.8%", timeout=240_000)
    expect(
        page.get_by_text(re.compile(r"mobilenetv3_large_100 runs in [0-9.]+ ms at batch 1"))
    ).to_be_visible()
    assert page.locator("[data-testid='stException']").count() == 0
