"""Finding 8: an htmx request without a session (logged out in another tab, or expired) makes
the browser go to the login page, which says the session ended; it never swaps a login page
into the element that asked."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = pytest.mark.django_db

ENDED = b"Your session ended: log in again."
POLLED = ["overview:layer4", "overview:services", "overview:apply-status"]


@pytest.fixture
def user():
    return get_user_model().objects.create_user("loadbalancer", password="a-Long-test-pass")


@pytest.fixture
def redis_down(settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"


def poll(client, name, current="https://lb.example:9443/lbadmin/", **headers):
    if current is not None:
        headers["HTTP_HX_CURRENT_URL"] = current
    return client.get(reverse(name), HTTP_HX_REQUEST="true", **headers)


@pytest.mark.parametrize("name", POLLED)
def test_a_polled_panel_without_a_session_sends_the_browser_to_the_login_page(client, name):
    response = poll(client, name, HTTP_HX_TRIGGER="layer4")
    assert response.status_code == 204 and response.content == b""
    assert response["HX-Redirect"] == "/lbadmin/login/?next=%2Flbadmin%2F&session=ended"


def test_the_login_page_says_the_session_ended_and_goes_back_to_the_page(client, user):
    location = poll(client, "overview:layer4",
                    current="https://lb.example:9443/lbadmin/cluster/virtual-services/?x=1"
                    )["HX-Redirect"]
    assert location == ("/lbadmin/login/?next=%2Flbadmin%2Fcluster%2Fvirtual-services%2F"
                        "&session=ended")
    page = client.get(location)
    assert ENDED in page.content
    assert b'name="next" value="/lbadmin/cluster/virtual-services/"' in page.content
    response = client.post(reverse("login"), {"username": "loadbalancer",
                                              "password": "a-Long-test-pass",
                                              "next": "/lbadmin/cluster/virtual-services/"})
    assert response["Location"] == "/lbadmin/cluster/virtual-services/"


def test_an_ordinary_visit_to_the_login_page_does_not_say_the_session_ended(client):
    assert ENDED not in client.get(reverse("login")).content
    assert ENDED not in client.get(client.get("/lbadmin/")["Location"]).content


@pytest.mark.parametrize("current", [
    None, "", "https://evil.example/elsewhere/", "https://lb.example:9443/other/",
    "https://lb.example:9443/lbadmin/login/", "not a url", "http://[::1",
])
def test_next_is_only_a_local_lbadmin_page(client, current):
    assert poll(client, "overview:services", current=current)["HX-Redirect"] == \
        "/lbadmin/login/?session=ended"


def test_logging_out_in_another_tab_ends_the_polls_of_this_one(client, user, redis_down):
    client.force_login(user)
    assert poll(client, "overview:layer4").status_code == 200
    client.post(reverse("logout"))  # the other tab: same cookies
    response = poll(client, "overview:layer4")
    assert response.status_code == 204 and "session=ended" in response["HX-Redirect"]


def test_an_htmx_post_without_a_session_goes_to_the_login_page_too(client):
    response = client.post(reverse("setup-wizard-dismiss"), HTTP_HX_REQUEST="true",
                           HTTP_HX_CURRENT_URL="https://lb.example:9443/lbadmin/")
    assert response.status_code == 204 and "session=ended" in response["HX-Redirect"]


def test_a_page_without_a_session_still_redirects_as_before(client):
    response = client.get(reverse("overview:index"))
    assert response.status_code == 302
    assert response["Location"] == "/lbadmin/login/?next=/lbadmin/"


def test_htmx_requests_with_a_session_are_left_alone(client, user, redis_down):
    client.force_login(user)
    response = poll(client, "overview:services")
    assert response.status_code == 200 and "HX-Redirect" not in response
