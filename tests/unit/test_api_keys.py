"""API keys (api.keys, Local Configuration › API Keys): stored hashed, shown once, revoked
keys refused, a key's rights are its user's role, no session reaches the API, the User Log
names the key."""

import base64
import hashlib
import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from api import keys
from api.models import ApiKey
from clusters.models import VirtualService
from core import roles
from core.models import AuditEntry
from maintenance import users

pytestmark = pytest.mark.django_db
PASSWORD = "a-Long-test-pass"
SERVICE = {"label": "VNA", "vip": "198.51.100.100", "ports": "12000"}


@pytest.fixture(autouse=True)
def redis_down(settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"
    settings.REDIS_SOCKET = tmp_path / "nothing.sock"
    settings.CELERY_BROKER_URL = f"redis+socket://{tmp_path}/nothing.sock"


@pytest.fixture
def config_user():
    return get_user_model().objects.create_user("loadbalancer", password=PASSWORD)


@pytest.fixture
def admin(config_user):
    client = Client()
    client.force_login(config_user)
    return client


def user_of(role):
    if role == roles.CONFIG:
        return get_user_model().objects.get_or_create(username="loadbalancer")[0]
    return users.do_add_user("test", f"a-{role}-user", PASSWORD, role)


def new_key(user, name="ansible"):
    return keys.do_create_key(ApiKey(user=user, name=name), user)


def bearer(raw):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_a_key_is_stored_only_as_its_sha256_and_shown_once(admin, config_user):
    response = admin.post(reverse("local:api-keys"), {"name": "ansible",
                                                      "user": config_user.pk})
    html = response.content.decode()
    assert response.status_code == 200
    raw = html.split('id="new-key-text">')[1].split("<")[0]
    assert raw.startswith("lba_") and len(raw) == 4 + 43  # 32 random bytes, URL-safe base64
    stored = ApiKey.objects.get()
    assert stored.secret_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in json.dumps(list(ApiKey.objects.values()), default=str)
    assert stored.prefix == raw[:12]
    again = admin.get(reverse("local:api-keys")).content.decode()
    assert raw not in again and f"{raw[:12]}…" in again  # the list shows its prefix only
    assert keys.authenticate(raw) == stored
    assert AuditEntry.objects.filter(
        action="created API key ansible for user loadbalancer (config role)").exists()


def test_the_key_page_refuses_a_name_in_use_next_to_the_field(admin, config_user):
    new_key(config_user)
    response = admin.post(reverse("local:api-keys"), {"name": "ansible",
                                                      "user": config_user.pk})
    assert "An active API key already has this name" in response.content.decode()
    assert 'id="new-key-text"' not in response.content.decode()
    assert ApiKey.objects.count() == 1


def test_a_revoked_key_is_refused_and_kept_in_the_list(admin, config_user):
    raw = new_key(config_user)
    assert admin.get("/api/v1/virtual-services", **bearer(raw)).status_code == 200
    key = ApiKey.objects.get()
    response = admin.post(reverse("local:api-key-revoke", args=[key.pk]))
    assert response.status_code == 302
    refused = Client().get("/api/v1/virtual-services", **bearer(raw))
    assert refused.status_code == 401
    assert "No valid API key" in refused.json()["errors"]["__all__"][0]
    assert keys.authenticate(raw) is None
    assert "revoked" in admin.get(reverse("local:api-keys")).content.decode()
    assert AuditEntry.objects.filter(action="revoked API key ansible of user loadbalancer") \
        .exists()


def test_a_disabled_users_key_is_refused(config_user):
    maint = user_of(roles.MAINT)
    raw = new_key(maint)
    maint.is_active = False
    maint.save()
    assert Client().get("/api/v1/virtual-services", **bearer(raw)).status_code == 401


@pytest.mark.parametrize("header", [
    {}, {"HTTP_AUTHORIZATION": "Bearer lba_wrong"}, {"HTTP_AUTHORIZATION": "Bearer "},
    {"HTTP_AUTHORIZATION": "Basic bG9hZGJhbGFuY2VyOnBhc3M="}, {"HTTP_X_LB_APIKEY": "!!"},
])
def test_a_wrong_or_missing_key_gets_401_in_words_and_changes_nothing(config_user, header):
    new_key(config_user)
    response = Client().post("/api/v1/virtual-services", json.dumps(SERVICE),
                             content_type="application/json", **header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "No valid API key" in response.json()["errors"]["__all__"][0]
    assert not VirtualService.objects.exists()


def test_a_webui_session_alone_does_not_reach_the_api(admin):
    response = admin.post("/api/v1/virtual-services", json.dumps(SERVICE),
                          content_type="application/json")
    assert response.status_code == 401
    assert admin.get("/api/v1/virtual-services").status_code == 401
    assert not VirtualService.objects.exists()


def test_key_calls_need_no_csrf_token(config_user):
    """The session's CSRF rules are for cookies: a key is not sent by a browser on its own."""
    raw = new_key(config_user)
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/api/v1/virtual-services", json.dumps(SERVICE),
                           content_type="application/json", **bearer(raw))
    assert response.status_code == 201, response.content


def test_the_api_v2_header_carries_the_base64_of_the_key(rf, config_user):
    raw = new_key(config_user)
    request = rf.post("/api/v2/", HTTP_X_LB_APIKEY=base64.b64encode(raw.encode()).decode())
    assert keys.user_for(request) == config_user
    assert keys.user_for(rf.post("/api/v2/", HTTP_X_LB_APIKEY="bm90IGEga2V5")) is None


@pytest.mark.parametrize(("role", "may_add", "may_halt", "may_read"), [
    (roles.CONFIG, True, True, True),
    (roles.MAINT, False, True, True),
    (roles.REPORT, False, False, False),
])
def test_a_key_has_exactly_its_users_role(config_user, role, may_add, may_halt, may_read):
    service = VirtualService.objects.create(label="Existing", vip="198.51.100.101",
                                            ports="80")
    server = service.real_servers.create(label="P", ip="192.0.2.110")
    raw = new_key(user_of(role), name=f"{role}-key")
    client = Client()
    added = client.post("/api/v1/virtual-services", json.dumps(SERVICE),
                        content_type="application/json", **bearer(raw))
    assert (added.status_code == 201) == may_add
    if not may_add:
        assert added.status_code == 403
        words = added.json()["errors"]["__all__"][0]
        assert f"This API key's role, {roles.ROLE_WORDS[role]}, may not do this" in words
        assert not VirtualService.objects.filter(label="VNA").exists()
    halted = client.post(f"/api/v1/real-servers/{server.pk}/halt", **bearer(raw))
    assert (halted.status_code == 200) == may_halt
    server.refresh_from_db()
    assert (server.state == "halt") == may_halt
    # System Overview's rows: every role reads; Cluster Configuration's lists: maint and up
    assert client.get("/api/v1/apply-state", **bearer(raw)).status_code == 200
    assert (client.get("/api/v1/virtual-services", **bearer(raw)).status_code == 200) == \
        may_read


def test_every_change_made_with_a_key_names_it_in_the_user_log(config_user):
    raw = new_key(config_user, name="change-ticket-42")
    Client().post("/api/v1/virtual-services", json.dumps(SERVICE),
                  content_type="application/json", **bearer(raw))
    entry = AuditEntry.objects.filter(action__startswith="added virtual service VNA").get()
    assert entry.user == "loadbalancer (API key change-ticket-42)"


def test_last_used_is_recorded(config_user):
    raw = new_key(config_user)
    assert ApiKey.objects.get().last_used is None
    Client().get("/api/v1/apply-state", **bearer(raw))
    assert ApiKey.objects.get().last_used is not None


def test_only_a_config_user_manages_keys_maint_sees_the_list(config_user):
    new_key(config_user)
    client = Client()
    client.force_login(user_of(roles.MAINT))
    page = client.get(reverse("local:api-keys")).content.decode()
    assert "ansible" in page and 'id="api-key-add"' not in page and ">Revoke<" not in page
    assert client.post(reverse("local:api-keys"), {"name": "x", "user": config_user.pk}) \
        .status_code == 403
    key = ApiKey.objects.get()
    assert client.post(reverse("local:api-key-revoke", args=[key.pk])).status_code == 403
    assert list(ApiKey.objects.values_list("name", "revoked")) == [("ansible", None)]
