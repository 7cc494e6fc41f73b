"""Reports › Graphs and System Overview's graphs in Chromium after the guide's deployment, with
real connections through the VIP from the lab's client: the sampler (beat, every 5 s, on the
dataplane worker) stores them; the page fetches the JSON, uPlot draws it on a canvas, and the
range buttons fetch and draw every graph again for their range."""

import itertools
import re
import time
from urllib.parse import parse_qs, urljoin, urlparse

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from lab import GUIDE_PORTS, VIP
from tests.netns.traffic import connect_many
from tests.stacks import in_stack, wait_for

from .conftest import log_in

pytestmark = pytest.mark.browser
CONNECTIONS = 30
SYSTEM_GRAPHS = ("bandwidth", "packets", "load", "memory", "disk")
RANGES = ("hour", "day", "week", "month", "year")

# Coloured pixels on a figure's canvas: the series' lines (graphs.js COLOURS, anti-aliased),
# not the axes, ticks and grid uPlot draws in black and greys.
LINE_PIXELS = """figure => {
    const canvas = figure.querySelector("canvas");
    if (!canvas) return -1;
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let found = 0;
    for (let i = 0; i < pixels.length; i += 4) {
        const [r, g, b, a] = pixels.slice(i, i + 4);
        if (a > 100 && Math.max(r, g, b) - Math.min(r, g, b) > 60) found++;
    }
    return found;
}"""


def sampled(values):
    return [value for value in values if value is not None]


def fetched_graphs(responses):
    """{(graph, range): JSON} of the graph data the page fetched. A fetch of the page before
    a navigation (a slow machine can still be answering the first Graphs page when "Show"
    loads the next) has no body any more: it is not the page under test."""
    found = {}
    for response in responses:
        query = parse_qs(urlparse(response.url).query)
        if response.ok:
            try:
                data = response.json()
            except PlaywrightError as gone:
                if "navigated away" not in str(gone):
                    raise
                continue
            found[(query["graph"][0], query["range"][0])] = data
    return found


def joined(data):
    """Whether some line of a graph's JSON has two sampled points side by side: something
    uPlot draws a line between (a lone point among nulls is not drawn at this density, as in
    the coarse ranges of a stack a minute old)."""
    return any(a is not None and b is not None for line in data["series"]
               for a, b in itertools.pairwise(line["values"]))


def expect_drawn(page, graph, range_name="hour", lines=True):
    figure = page.locator(f"figure[data-graph='{graph}']")
    expect(figure).to_have_attribute("data-drawn", range_name)
    expect(figure).to_have_attribute("data-values", re.compile(r"^[1-9]\d*$"))
    expect(figure.locator("figcaption")).not_to_be_empty()
    expect(figure.locator("canvas")).to_have_count(1)
    if lines:
        # Any coloured pixel is a series drawn (axes and grid are grey): on a stack a minute
        # old a line may join two points 5 s apart on an hour's axis, a few pixels long.
        assert figure.evaluate(LINE_PIXELS) > 0, f"{graph}: nothing drawn on the canvas"


def test_graphs_draw_the_sampled_traffic_and_switch_ranges(guide_deployment, appliance_stack):
    page, lab = guide_deployment, appliance_stack.lab
    answers = connect_many(lab, VIP, GUIDE_PORTS, CONNECTIONS)
    assert not [a for a in answers if a.startswith("ERROR")], answers

    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Reports", exact=True).click()
    menu.get_by_role("link", name="Graphs", exact=True).click()
    expect(page.get_by_role("heading", name="Graphs", exact=True)).to_be_visible()
    sid = page.get_by_label("Virtual service").locator("option", has_text="VNA") \
        .get_attribute("value")
    data_url = urljoin(page.url, page.locator(".graphs[data-url]").get_attribute("data-url"))

    # the sampler's samples since the connections: the first one after them counts them (a
    # rate above 0), the later ones a 0 each, so the line has points to join
    def conns():
        answer = page.request.get(f"{data_url}?graph=vs-{sid}&range=hour")
        assert answer.ok, answer.status
        return sampled(answer.json()["series"][0]["values"])

    deadline = time.monotonic() + 30
    while not (len(found := conns()) >= 3 and max(found) > 0) and time.monotonic() < deadline:
        time.sleep(1)
    assert len(found) >= 3 and max(found) > 0, found

    responses = []
    page.on("response", lambda r: responses.append(r) if "/graphs/data/" in r.url else None)
    page.get_by_label("Virtual service").select_option(label="VNA")
    page.get_by_role("button", name="Show").click()
    shown = (f"vs-{sid}", f"vsbytes-{sid}", *SYSTEM_GRAPHS)
    expect(page.locator("figure[data-graph]")).to_have_count(len(shown))
    for graph in shown:
        expect_drawn(page, graph)
    expect(page.locator(f"figure[data-graph='vs-{sid}'] figcaption")).to_have_text(
        "VNA: connections and packets (per second)")
    data = fetched_graphs(responses)
    assert set(shown) <= {graph for graph, _ in data}
    for graph in shown:
        assert joined(data[(graph, "hour")]), graph
    connections = data[(f"vs-{sid}", "hour")]["series"][0]
    assert connections["label"] == "new connections"
    # the connections counted: the rates × the 5 s step add up to them (another test's
    # connections through the VIP may add some; beat's few ms of jitter on the interval
    # the rate is taken over may take a little off)
    assert sum(sampled(connections["values"])) * 5 >= 0.9 * CONNECTIONS

    ranges = page.get_by_role("group", name="Range")
    for range_name in RANGES[1:]:
        before = len(responses)
        button = ranges.get_by_role("button", name=range_name.capitalize())
        button.click()
        expect(button).to_have_attribute("aria-pressed", "true")
        expect(ranges.locator("button[aria-pressed=true]")).to_have_count(1)
        for graph in shown:
            expect(page.locator(f"figure[data-graph='{graph}']")).to_have_attribute(
                "data-drawn", range_name)
        data = fetched_graphs(responses[before:])
        assert {graph for graph, fetched in data if fetched == range_name} >= set(shown)
        load = data[("load", range_name)]
        assert load["range"] == range_name and sampled(load["series"][0]["values"])
        span = load["x"][-1] - load["x"][0]  # the x axis covers the range, whatever its step
        assert span >= {"day": 86_000, "week": 600_000, "month": 2_600_000,
                        "year": 31_000_000}[range_name], (range_name, span)
        for graph in shown:
            expect_drawn(page, graph, range_name, lines=joined(data[(graph, range_name)]))

    menu.get_by_role("link", name="System Overview", exact=True).click()
    overview = page.locator("#overview-graphs")
    expect(overview.locator("figure[data-graph]")).to_have_count(2)
    for graph in ("bandwidth", "load"):
        expect_drawn(page, graph)
    expect(overview.locator("figure[data-graph=bandwidth] figcaption")).to_have_text(
        "Network bandwidth (bit/s)")
    expect(overview.locator("figure[data-graph=load] figcaption")).to_have_text("Load average")


LAST_RATES_SECONDS = """
from reports.sampler import read_rates
rates = read_rates()
print(rates["seconds"] if rates else 0)
"""
DEFAULT_GRAPHING = """
from network.models import GraphingSettings
GraphingSettings.objects.all().delete()
"""


def test_the_graphing_page_sets_how_often_and_what_is_sampled(page, appliance_stack, webui):
    """Local Configuration › Graphing: 10 s and no real servers' series, stored, shown, and
    taken by the sampler on the dataplane worker (its rates now span 10 s)."""
    log_in(page, webui, appliance_stack.generated_password)
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Local Configuration", exact=True).click()
    menu.get_by_role("link", name="Graphing", exact=True).click()
    expect(page.get_by_role("heading", name="Graphing", exact=True)).to_be_visible()
    expect(page.locator("#graphing-interval")).to_have_text("5 s")
    expect(page.get_by_label("Keep real servers' graphs")).to_be_checked()
    try:
        page.get_by_label("Sample every").select_option(label="10 s")
        page.get_by_label("Keep real servers' graphs").uncheck()
        page.get_by_role("button", name="Update").click()
        expect(page.get_by_text("Graphing settings saved")).to_be_visible()
        expect(page.locator("#graphing-interval")).to_have_text("10 s")
        expect(page.get_by_label("Sample every")).to_have_value("10")
        expect(page.get_by_label("Keep real servers' graphs")).not_to_be_checked()
        expect(page.get_by_role("cell", name="Layer 4 real servers")).to_have_count(0)
        expect(page.locator("#graphing-size")).to_contain_text(
            f"{4 * (360 + 1440 + 1008 + 744 + 1460)} bytes per series")
        # the sampler's rates are taken over the new interval (beat still ticks every 5 s)
        assert wait_for(lambda: float(in_stack(appliance_stack, LAST_RATES_SECONDS)) > 9, 60,
                        every=2), in_stack(appliance_stack, LAST_RATES_SECONDS)
        menu.get_by_role("link", name="Reports", exact=True).click()
        menu.get_by_role("link", name="Layer 4 Traffic Rate", exact=True).click()
        expect(page.locator("#traffic-rate")).to_have_attribute("hx-trigger", "every 10s")
    finally:  # the shared stack's other tests sample every 5 s
        in_stack(appliance_stack, DEFAULT_GRAPHING)
