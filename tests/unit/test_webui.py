"""The WebUI's shell through Django's test client: access, CSRF, headers, menu, wizard."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from appliance import services
from appliance.navigation import MENU, Page, section
from appliance.views import not_built
from appliance.wsgi import redirect_to_https

pytestmark = pytest.mark.django_db

MENU_URLS = [(page.title, reverse(page.url_name(section)))
             for section in MENU for page in section.pages]
OTHER_URLS = [reverse("setup-wizard"), reverse("overview:services")]
POST_URLS = [reverse("logout"), reverse("setup-wizard-dismiss")]


@pytest.fixture
def user():
    return get_user_model().objects.create_user("loadbalancer", password="a-Long-test-pass")


@pytest.fixture
def browser(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.fixture
def redis_down(settings, tmp_path):
    """Point the status checks at a socket nothing listens on."""
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"


@pytest.mark.parametrize("url", [url for _, url in MENU_URLS] + OTHER_URLS + POST_URLS)
def test_every_url_sends_a_stranger_to_the_login_page(client, url):
    for response in (client.get(url), client.post(url)):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=")


def test_the_root_redirects_to_lbadmin(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/lbadmin/"


def test_a_post_without_a_csrf_token_is_refused(browser):
    for url in POST_URLS:
        assert browser.post(url).status_code == 403


def test_the_login_form_needs_a_csrf_token(user):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "loadbalancer",
                                              "password": "a-Long-test-pass"})
    assert response.status_code == 403


def test_a_wrong_password_is_refused_with_a_message(client, user):
    response = client.post(reverse("login"), {"username": "loadbalancer", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert "_auth_user_id" not in client.session


def test_the_menu_has_the_guides_eight_sections_in_order():
    assert [s.title for s in MENU] == [
        "System Overview", "Local Configuration", "Cluster Configuration", "Maintenance",
        "View Configuration", "Reports", "Logs", "Support",
    ]


def test_the_sub_menus_name_what_the_guide_names():
    pages = {s.title: [p.title for p in s.pages] for s in MENU}
    assert pages["Local Configuration"] == [
        "Hostname & DNS", "Network Interface Configuration", "Routing", "System Date & time",
        "Physical – Advanced Configuration", "Portal Management", "Security",
        "SNMP Configuration", "Graphing", "License Key", "API Keys",
    ]
    assert pages["Cluster Configuration"] == [
        "Layer 4 – Virtual Services", "Layer 4 – Real Servers",
        "Layer 4 – Advanced Configuration", "Floating IP's",
        "Health Check Scripts", "High-Availability Configuration",
    ]
    assert pages["Maintenance"] == [
        "Backup & Restore", "Software Update", "Passwords", "Restart Services",
        "Firewall Script", "Firewall Lockdown Wizard",
    ]


@pytest.mark.parametrize(("title", "url"), MENU_URLS)
def test_every_menu_page_opens_with_its_title(browser, redis_down, title, url):
    response = browser.get(url)
    assert response.status_code == 200
    assert f"<h1>{title}</h1>".replace("&", "&amp;").replace("'", "&#x27;").encode() \
        in response.content


def test_a_page_not_built_says_so_and_shows_no_data(rf, user):
    # every menu page is built now: a page that is not, as with_not_built would serve it
    request = rf.get("/lbadmin/local/planned/")
    request.user = user
    response = not_built(request, section=section("local"),
                         page=Page("Planned", "planned", "What it will do."))
    assert b"Not built yet." in response.content
    assert b"<table" not in response.content


def test_pages_forbid_framing_inline_script_and_plain_http(browser):
    response = browser.get(reverse("overview:index"), secure=True)
    assert response["X-Frame-Options"] == "DENY"
    csp = response["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert b"<script>" not in response.content and b" style=" not in response.content


def test_session_and_csrf_cookies_are_secure(settings):
    assert settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE
    assert settings.SESSION_COOKIE_HTTPONLY
    assert settings.SESSION_IDLE_TIMEOUT == 1800


def test_the_setup_wizard_question_is_asked_until_dismissed(browser, user, redis_down):
    assert b"Would you like to run the Setup Wizard?" in browser.get("/lbadmin/").content
    token = browser.get("/lbadmin/").cookies["lbadmin_csrftoken"].value
    response = browser.post(reverse("setup-wizard-dismiss"), HTTP_X_CSRFTOKEN=token,
                            HTTP_HX_REQUEST="true")
    assert b"will not be asked again" in response.content
    assert b"Would you like to run the Setup Wizard?" not in browser.get("/lbadmin/").content
    assert not services.should_ask_setup_wizard(user)


def test_accepting_the_setup_wizard_explains_it_is_for_layer_7(browser):
    assert b"Layer 7 services only" in browser.get(reverse("setup-wizard")).content


def test_the_overview_says_when_redis_is_down(browser, redis_down):
    response = browser.get(reverse("overview:services"))
    assert b"Redis (broker and runtime state)" in response.content
    assert response.content.count(b"DOWN") == 1
    assert b"Redis is down, workers cannot be asked" in response.content


def test_the_first_start_makes_a_password_and_stores_only_its_hash():
    password = services.ensure_appliance_user()
    assert password and len(password) >= 20
    stored = get_user_model().objects.get(username="loadbalancer")
    assert password not in stored.password and stored.check_password(password)
    assert services.ensure_appliance_user() is None  # a later start changes nothing
    assert stored.check_password(password)


def test_the_first_start_takes_the_given_password():
    assert services.ensure_appliance_user("given-Password-123") == "given-Password-123"
    assert get_user_model().objects.get(username="loadbalancer").check_password(
        "given-Password-123")


def test_plain_http_only_redirects_to_the_https_port(settings):
    settings.LBADMIN_HTTPS_PORT = 9443
    seen = {}
    body = redirect_to_https(
        {"HTTP_HOST": "lb.example:9080", "PATH_INFO": "/lbadmin/", "QUERY_STRING": "a=1"},
        lambda status, headers: seen.update(status=status, headers=dict(headers)))
    assert seen["status"].startswith("301")
    assert seen["headers"]["Location"] == "https://lb.example:9443/lbadmin/?a=1"
    assert body == [b""]


def idle_for(browser, seconds):
    session = browser.session
    session["last_activity"] = session.get("last_activity", 0) - seconds
    session.save()


def test_a_session_ends_after_the_idle_timeout(browser, redis_down):
    assert browser.get("/lbadmin/").status_code == 200
    idle_for(browser, 1801)
    response = browser.get(reverse("cluster:virtual-services"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert browser.get("/lbadmin/").status_code == 302  # logged out for good


def test_pages_refreshing_themselves_do_not_keep_the_session_alive(browser, redis_down):
    browser.get("/lbadmin/")
    idle_for(browser, 1000)
    poll = browser.get(reverse("overview:layer4"), HTTP_HX_REQUEST="true",
                       HTTP_HX_TRIGGER="layer4")
    assert poll.status_code == 200
    idle_for(browser, 900)  # 1,900 s since the user last did something
    poll = browser.get(reverse("overview:layer4"), HTTP_HX_REQUEST="true",
                       HTTP_HX_TRIGGER="layer4")
    assert poll.status_code == 204 and poll["HX-Redirect"].startswith(reverse("login") + "?")
    assert "session=ended" in poll["HX-Redirect"]


def test_what_the_user_does_keeps_the_session(browser, redis_down):
    browser.get("/lbadmin/")
    idle_for(browser, 1000)
    browser.get(reverse("cluster:virtual-services"))  # activity
    idle_for(browser, 900)
    assert browser.get("/lbadmin/").status_code == 200


def test_password_guessing_from_one_address_is_stopped(client, user):
    for _ in range(5):
        response = client.post(reverse("login"), {"username": "loadbalancer",
                                                  "password": "guess"})
        assert b"Please enter a correct username and password" in response.content
    response = client.post(reverse("login"), {"username": "loadbalancer",
                                              "password": "a-Long-test-pass"})
    assert b"Too many refused logins from your address" in response.content
    assert "_auth_user_id" not in client.session  # even the right password waits
    other = Client(REMOTE_ADDR="192.0.2.77")
    response = other.post(reverse("login"), {"username": "loadbalancer",
                                             "password": "a-Long-test-pass"})
    assert response.status_code == 302  # another address is not blocked


def test_every_model_change_has_its_migration():
    """A release's migrations are what an update runs: a model changed without one would
    leave an updated appliance's database behind its code."""
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)



def test_the_header_and_system_overview_show_the_saved_hostname(browser, redis_down):
    page = browser.get(reverse("overview:index")).content.decode()
    assert "<dt>Hostname</dt><dd>lbadmin</dd>" in page  # nothing saved yet: the default
    token = browser.get(reverse("local:hostname-dns")).cookies["lbadmin_csrftoken"].value
    browser.post(reverse("local:hostname-dns"), {"hostname": "vna-lb-01"},
                 HTTP_X_CSRFTOKEN=token)  # saved (the worker is away: not written yet)
    page = browser.get(reverse("overview:index")).content.decode()
    assert "· vna-lb-01</span>" in page  # the header
    assert "<dt>Hostname</dt><dd>vna-lb-01</dd>" in page  # System Overview's Appliance panel
