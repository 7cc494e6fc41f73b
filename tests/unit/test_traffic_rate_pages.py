"""Reports › Layer 4 Traffic Rate in pages (issue 14): with many services the table shows one
page of them (clusters.status.PER_PAGE, as Layer 4 Status), after an optional search by label,
VIP or real server; the self-refreshing partial keeps the page and the search. Against a real
Redis on a unix socket of the test's own (the rates the sampler wrote)."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from clusters.models import RealServer, VirtualService
from clusters.status import PER_PAGE
from reports import sampler

pytestmark = pytest.mark.django_db
URL = "/lbadmin/reports/layer4-traffic/"


@pytest.fixture
def admin(client, redis_server, settings):
    settings.REDIS_URL = f"unix://{settings.REDIS_SOCKET}"
    redis_server.flushall()
    user = get_user_model().objects.create_user("loadbalancer", password="a-Long-test-pass")
    client.force_login(user)
    return client


@pytest.fixture
def services(redis_server):
    """120 services, "svc 000" to "svc 119", each with one real server 192.0.2.<n>; rates for
    two of them."""
    VirtualService.objects.bulk_create(
        VirtualService(label=f"svc {i:03}", vip=f"198.51.100.{100 + i // 10}",
                       ports=str(20000 + i)) for i in range(120))
    made = list(VirtualService.objects.order_by("id"))
    RealServer.objects.bulk_create(RealServer(service=service, label=f"rs {i:03}",
                                              ip=f"192.0.2.{i + 1}")
                                   for i, service in enumerate(made))
    rates = dict.fromkeys(sampler.FIELDS, 0.0)
    redis_server.set(sampler.RATES_KEY, json.dumps({"seconds": 5.0, "services": {
        str(made[0].id): {**rates, "conns": 11.0}, str(made[75].id): {**rates, "conns": 77.0}},
        "servers": {}}))
    return made


def service_rows(page):
    return [label for label in (line.split("<strong>")[1].split("</strong>")[0]
                                for line in page.splitlines() if 'class="service"' in line)]


def test_the_url_is_the_menus():
    assert reverse("reports:layer4-traffic") == URL


def test_many_services_are_shown_one_page_at_a_time_with_links(admin, services):
    assert PER_PAGE == 50
    page = admin.get(URL).content.decode()
    assert service_rows(page) == [f"svc {i:03}" for i in range(50)]
    assert page.count('class="server"') == 50  # only the shown services' real servers
    assert "Services 1–50 of 120 · page 1 of 3" in page
    assert 'rel="next"' in page and f'href="{URL}?page=2"' in page and 'rel="prev"' not in page
    assert "11.0" in page and "77.0" not in page  # svc 075 is on page 2
    second = admin.get(URL, {"page": "2"}, headers={"HX-Request": "true"}).content.decode()
    assert second.startswith('<div id="traffic-rate"')  # the partial, for htmx
    assert service_rows(second) == [f"svc {i:03}" for i in range(50, 100)]
    assert "77.0" in second and f'hx-get="{URL}?page=2"' in second  # the poll keeps its page
    assert 'rel="prev"' in second and 'rel="next"' in second
    last = admin.get(URL, {"page": "99"}).content.decode()  # past the end: the last page
    assert service_rows(last) == [f"svc {i:03}" for i in range(100, 120)]
    assert "page 3 of 3" in last and 'rel="next"' not in last
    assert service_rows(admin.get(URL, {"page": "nonsense"}).content.decode())[0] == "svc 000"


def test_the_search_keeps_services_by_label_vip_or_real_server(admin, services):
    page = admin.get(URL, {"q": "SVC 07"}).content.decode()
    assert service_rows(page) == [f"svc {i:03}" for i in range(70, 80)]
    assert "120 virtual services; showing 10 matching “SVC 07”" in page
    assert "page 1 of" not in page  # one page: no page links
    assert service_rows(admin.get(URL, {"q": "192.0.2.117"}).content.decode()) == ["svc 116"]
    assert service_rows(admin.get(URL, {"q": "198.51.100.111"}).content.decode()) == \
        [f"svc {i:03}" for i in range(110, 120)]
    partial = admin.get(URL, {"q": "svc 0", "page": "2"},
                        headers={"HX-Request": "true"}).content.decode()
    assert service_rows(partial) == [f"svc {i:03}" for i in range(50, 100)]
    assert f'hx-get="{URL}?q=svc+0&amp;page=2"' in partial
    assert f'href="{URL}?q=svc+0"' in partial  # previous: page 1 of the same search


def test_a_search_that_matches_nothing_says_so_escaped(admin, services):
    page = admin.get(URL, {"q": "<b>nobody</b>"}).content.decode()
    assert service_rows(page) == []
    assert "No virtual service matches “&lt;b&gt;nobody&lt;/b&gt;”." in page
    assert "<b>nobody</b>" not in page
