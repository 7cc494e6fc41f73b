"""Issue 12 finding 7: the WebUI answers to a name outside its own addresses and hostname
only when the administrator allows it in Physical – Advanced Configuration."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from core.models import AuditEntry
from maintenance import views
from maintenance.models import WebUISettings
from network.models import NetworkConfiguration

pytestmark = pytest.mark.django_db

ADVANCED = "local:advanced"


@pytest.fixture
def admin(settings, tmp_path, monkeypatch):
    """A logged-in client on the appliance's own address; no online update check is sent."""
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"
    monkeypatch.setattr(views, "send_task", lambda task, *args: None)
    network = NetworkConfiguration.load()
    network.interfaces = {"eth0": {"addresses": ["192.0.2.1/24"], "mtu": 1500}}
    network.hostname = "lb1"
    network.save()
    client = Client(HTTP_HOST="192.0.2.1:9443")
    client.force_login(get_user_model().objects.create_user(
        "loadbalancer", password="a-Long-test-pass"))
    return client


def save(client, names, **extra):
    return client.post(reverse(ADVANCED), {"server_url": "", "allowed_hosts": names},
                       follow=True, **extra)


def status(host):
    return Client().get(reverse("login"), HTTP_HOST=host).status_code


def test_a_name_not_allowed_is_refused_in_words(admin):
    response = Client().get(reverse("login"), HTTP_HOST="lb.example.org")
    assert response.status_code == 400
    text = response.content.decode()
    assert "does not answer to the name “lb.example.org”" in text
    assert "Physical – Advanced Configuration › Allowed Host Names" in text


def test_a_name_added_on_the_page_is_allowed_at_once(admin):
    page = admin.get(reverse(ADVANCED)).content.decode()
    assert "Allowed Host Names" in page and "lets any" in page
    response = save(admin, "lb.example.org, [2001:DB8::7] .corp.example")
    assert response.status_code == 200
    assert WebUISettings.load().allowed_hosts == "lb.example.org, 2001:db8::7, .corp.example"
    assert AuditEntry.objects.filter(action__contains="allowed host names").exists()
    assert status("lb.example.org:9443") == 200
    assert status("[2001:db8::7]") == 200
    assert status("web.corp.example") == 200
    assert status("evil.example") == 400
    save(admin, "")  # and taken away at once
    assert status("lb.example.org") == 400


def test_a_star_allows_any_name(admin):
    save(admin, "*")
    assert WebUISettings.load().allowed_hosts == "*"
    assert status("evil.example") == 200
    assert status("anything.at.all") == 200


@pytest.mark.parametrize(("names", "words"), [
    ("lb_1.example.org", "“lb_1.example.org” is not a host name or IP address."),
    ("-lb.example.org", "“-lb.example.org” is not a host name or IP address."),
    ("http://lb.example.org", "“http://lb.example.org” is not a host name or IP address."),
    ("lb.example.org *", "“*” allows any name: write it alone."),
])
def test_invalid_names_are_refused_next_to_the_field(admin, names, words):
    response = save(admin, names)
    page = response.content.decode()
    field = page[page.index('id="field-allowed_hosts"'):]
    field = field[:field.index("</div>")]
    assert words in field
    assert WebUISettings.load().allowed_hosts == ""


def test_a_list_leaving_out_the_name_in_use_is_refused(admin):
    save(admin, "lb.example.org")
    through_name = Client(HTTP_HOST="lb.example.org")
    through_name.force_login(get_user_model().objects.get())
    response = save(through_name, "other.example.org")
    assert "this browser uses the name “lb.example.org”, which the list leaves out" \
        in response.content.decode()
    assert WebUISettings.load().allowed_hosts == "lb.example.org"
    assert status("lb.example.org") == 200
    # kept in the list, or through the appliance's own address, it is saved
    save(through_name, "lb.example.org other.example.org")
    assert WebUISettings.load().allowed_hosts == "lb.example.org, other.example.org"
    save(admin, "")
    assert WebUISettings.load().allowed_hosts == ""
