"""Users and roles: every URL the resolver knows, requested by each role with GET and POST,
against the roles table (core.roles) and against the issue's rules written out here; the user
management rules; the roles replicating to a Secondary."""

import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from clusters import tasks as cluster_tasks
from clusters.models import RealServer, VirtualService
from core import roles
from core.models import AuditEntry, UserRole
from ha import replication
from ha import tasks as ha_tasks
from ha.models import Pair, PendingAction
from maintenance import users

pytestmark = pytest.mark.django_db
PASSWORD = "a-Long-test-pass"


# -- every URL ------------------------------------------------------------------------------

def url_patterns(patterns=None, namespace=()):
    """(namespace:name, pattern, view) of every named URL, from the resolver itself."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            inner = namespace + ((pattern.namespace,) if pattern.namespace else ())
            yield from url_patterns(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield ":".join((*namespace, pattern.name)), pattern


URLS = dict(url_patterns())
CHECKED = {name: pattern for name, pattern in URLS.items()
           if getattr(pattern.callback, "login_required", True)}


def test_every_url_with_a_login_is_in_the_roles_table():
    unknown = sorted(set(CHECKED) - set(roles.PERMISSIONS))
    assert not unknown, (
        "These URL names are not in core.roles.PERMISSIONS, so maint and report are refused "
        f"them: {', '.join(unknown)}. Say who may GET and POST each one there (and in the "
        "README's table).")
    stale = sorted(set(roles.PERMISSIONS) - set(CHECKED))
    assert not stale, f"core.roles.PERMISSIONS names URLs that do not exist: {stale}"


def test_the_urls_without_a_login_are_the_known_open_ones():
    open_names = {name for name in URLS if name not in CHECKED}
    assert open_names == roles.OPEN, (
        "A view without a login appeared or went (core.roles.OPEN): "
        f"{sorted(open_names ^ roles.OPEN)}")


def url_of(name, pattern):
    """The URL with every argument filled: numbers 1, texts "x"."""
    kwargs = {key: 1 if converter.regex == "[0-9]+" else "x"
              for key, converter in pattern.pattern.converters.items()}
    return reverse(name, kwargs=kwargs)


@pytest.fixture
def as_role(settings, tmp_path):
    """A logged-in client for a user of the role; Redis and the supervisor are unreachable,
    so allowed actions fail fast in words and send nothing anywhere."""
    settings.REDIS_URL = f"unix://{tmp_path}/nothing.sock"
    settings.REDIS_SOCKET = tmp_path / "nothing.sock"

    def login(role):
        name = settings.APPLIANCE_USER if role == roles.CONFIG else f"a-{role}-user"
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            user = users.do_add_user("test", name, PASSWORD, role)
        client = Client()
        client.force_login(user)
        return client

    return login


def refused(response):
    return response.status_code == 403 and \
        "appliance/forbidden.html" in [t.name for t in response.templates]


@pytest.mark.parametrize("role", [roles.CONFIG, roles.MAINT, roles.REPORT])
def test_each_role_gets_exactly_what_the_table_allows_on_every_url(as_role, role):
    """GET and POST on every URL; a refusal is the 403 page in words, never a 500 (the test
    client raises what a view raises)."""
    wrong = []
    for name, pattern in sorted(CHECKED.items()):
        url = url_of(name, pattern)
        for method in ("GET", "POST"):
            client = as_role(role)  # afresh: an allowed logout ends the session
            response = client.get(url) if method == "GET" else client.post(url)
            expected = roles.allows(role, name, method)
            if refused(response) == expected:
                wrong.append(f"{method} {name} should be {'allowed' if expected else 'refused'}"
                             f", got {response.status_code}")
            if refused(response):
                assert "Your role" in response.content.decode()
    assert not wrong, f"{role}: " + "; ".join(wrong)


# The rules, written out apart from the table: what maint and report may change.
REPORT_POSTS = {"logout", "setup-wizard-dismiss", "maintenance:passwords"}
MAINT_POSTS = REPORT_POSTS | {
    "overview:set-state", "maintenance:restart-service", "maintenance:software-update",
    "maintenance:update-check", "maintenance:update-online", "view:layer4-rebuild",
    "cluster:test-alert"}  # sends a test alert (Layer 4 – Advanced Configuration): no change
REPORT_SECTIONS = ("overview:", "view:", "reports:", "logs:", "support:")


def test_report_reads_its_sections_and_changes_only_its_own_password():
    posts = {name for name in CHECKED if roles.allows(roles.REPORT, name, "POST")}
    assert posts == REPORT_POSTS
    reads = {name for name in CHECKED if roles.allows(roles.REPORT, name, "GET")}
    outside = {name for name in reads if not name.startswith(REPORT_SECTIONS)}
    assert outside == {"logout", "setup-wizard", "setup-wizard-dismiss", "maintenance:passwords"}
    assert "support:download" not in reads and "overview:set-state" not in reads


def test_maint_reads_everything_and_changes_no_configuration():
    posts = {name for name in CHECKED if roles.allows(roles.MAINT, name, "POST")}
    assert posts == MAINT_POSTS
    unread = {name for name in CHECKED if name in roles.PERMISSIONS and
              not roles.allows(roles.MAINT, name, "GET")}
    # the pages that only exist to change something
    odd = {name for name in unread
           if not re.search(r"-(add|edit|delete|remove|break|template)$|roll-back", name)}
    assert not odd, f"maint may not read {odd}"
    for name in ("local:hostname-dns", "cluster:virtual-services", "cluster:ha",
                 "maintenance:history", "maintenance:firewall-lockdown", "logs:system"):
        assert roles.allows(roles.MAINT, name, "GET")


def test_maint_takes_a_backup_but_does_not_restore_one():
    name = "maintenance:backup-restore"
    assert roles.allows(roles.MAINT, name, "POST", {"download": "1"})
    assert not roles.allows(roles.MAINT, name, "POST", {"restore": "1"})
    assert not roles.allows(roles.MAINT, name, "POST", {"download": "1", "restore": "1"})
    assert not roles.allows(roles.MAINT, name, "POST", {})
    assert roles.allows(roles.CONFIG, name, "POST", {"restore": "1"})
    assert not roles.allows(roles.REPORT, name, "POST", {"download": "1"})


def test_maint_is_refused_a_restore_in_words_and_nothing_is_read(as_role):
    client = as_role(roles.MAINT)
    response = client.post(reverse("maintenance:backup-restore"), {"restore": "1"})
    assert refused(response)
    assert "Your role, maint: maintenance actions, no configuration changes, may not do this" \
        in response.content.decode()
    download = client.post(reverse("maintenance:backup-restore"), {"download": "1"})
    assert download.status_code == 200 and download["Content-Disposition"].startswith(
        "attachment")


def test_a_refused_htmx_request_says_why_and_reloads(as_role):
    response = as_role(roles.REPORT).post(reverse("overview:set-state", args=[1]),
                                          {"state": "halt"}, headers={"HX-Request": "true"})
    assert response.status_code == 403 and response["HX-Refresh"] == "true"
    assert "may not do this: it needs the config or maint role" in response.content.decode()


def test_a_user_without_a_stored_role_reads_only():
    user = get_user_model().objects.create_user("made-elsewhere", password=PASSWORD)
    assert roles.role_of(user) == roles.REPORT
    lb = get_user_model().objects.create_user(settings.APPLIANCE_USER, password=PASSWORD)
    assert roles.role_of(lb) == roles.CONFIG  # always, stored or not


def menu_of(client):
    page = client.get(reverse("overview:index")).content.decode()
    return re.search(r'<nav class="menu".*?</nav>', page, re.S).group(0)


def test_the_menu_offers_only_what_the_role_may_open(as_role):
    menu = menu_of(as_role(roles.REPORT))
    assert "Layer 4 – Virtual Services" not in menu and "Restart Services" not in menu
    assert "Local Configuration" not in menu and "Support Download" not in menu
    assert reverse("view:appliance") in menu and reverse("maintenance:passwords") in menu
    menu = menu_of(as_role(roles.MAINT))
    assert reverse("cluster:virtual-services") in menu and reverse("local:routing") in menu


# -- managing users -----------------------------------------------------------------------

@pytest.fixture
def config_client():
    lb = get_user_model().objects.create_user(settings.APPLIANCE_USER, password=PASSWORD)
    client = Client(enforce_csrf_checks=False)
    client.force_login(lb)
    return client, lb


def test_a_config_user_adds_a_user_with_a_role_and_it_is_audited(config_client):
    client, _ = config_client
    response = client.post(reverse("maintenance:user-add"), {
        "username": "night-shift", "password1": "Quiet-hours-2026", "password2":
        "Quiet-hours-2026", "role": "maint"})
    assert response.status_code == 302
    user = get_user_model().objects.get(username="night-shift")
    assert user.check_password("Quiet-hours-2026") and roles.role_of(user) == roles.MAINT
    assert AuditEntry.objects.filter(
        user="loadbalancer", action="added the WebUI user night-shift with the role maint").exists()
    listing = client.get(reverse("maintenance:passwords")).content.decode()
    assert 'data-user="night-shift"' in listing and ">maint<" in listing


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"username": "bob", "password1": "short1", "password2": "short1", "role": "report"},
     "password2", "too short"),
    ({"username": "bob", "password1": "Quiet-hours-2026", "password2": "Quiet-hours-2027",
      "role": "report"}, "password2", "didn’t match"),
    ({"username": "bad name!", "password1": "Quiet-hours-2026", "password2":
      "Quiet-hours-2026", "role": "report"}, "username", "Enter a valid username"),
    ({"username": "loadbalancer", "password1": "Quiet-hours-2026", "password2":
      "Quiet-hours-2026", "role": "report"}, "username", "already exists"),
    ({"username": "bob", "password1": "Quiet-hours-2026", "password2": "Quiet-hours-2026",
      "role": "root"}, "role", "Select a valid choice"),
])
def test_a_bad_new_user_is_refused_next_to_the_field_and_nothing_is_saved(config_client, fields,
                                                                         field, words):
    client, _ = config_client
    response = client.post(reverse("maintenance:user-add"), fields)
    assert response.status_code == 200
    page = response.content.decode()
    error = re.search(rf'id="field-{field}".*?</div>', page, re.S).group(0)
    assert words in error.replace("&#x27;", "’").replace("'", "’")
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["loadbalancer"]
    assert not UserRole.objects.exists()


def test_a_label_is_escaped(config_client):
    client, _ = config_client
    response = client.post(reverse("maintenance:user-add"), {
        "username": "<b>x", "password1": "Quiet-hours-2026", "password2": "Quiet-hours-2026",
        "role": "report"})
    assert "<b>x" not in response.content.decode()


def test_loadbalancer_cannot_be_demoted_or_removed(config_client):
    client, lb = config_client
    with pytest.raises(users.UserRefused, match="always has the config role"):
        users.do_set_role(lb, lb, roles.REPORT)
    other = users.do_add_user(lb, "second-admin", PASSWORD, roles.CONFIG)
    with pytest.raises(users.UserRefused, match="cannot be removed"):
        users.do_remove_user(other, lb)
    listing = client.get(reverse("maintenance:passwords")).content.decode()
    assert reverse("maintenance:user-remove", args=[lb.pk]) not in listing  # nor one's own
    assert reverse("maintenance:user-remove", args=[other.pk]) in listing
    # through the page: the select is disabled and a forged value changes nothing
    page = client.get(reverse("maintenance:user-edit", args=[lb.pk])).content.decode()
    assert re.search(r'<select name="role"[^>]*disabled', page)
    client.post(reverse("maintenance:user-edit", args=[lb.pk]),
                {"change_role": "1", "role": "report"})
    assert roles.role_of(lb) == roles.CONFIG


def test_there_is_always_a_config_user():
    admin = users.do_add_user("test", "only-admin", PASSWORD, roles.CONFIG)  # no loadbalancer
    with pytest.raises(users.UserRefused, match="only user with the config role"):
        users.do_set_role("test", admin, roles.MAINT)
    helper = users.do_add_user("test", "helper", PASSWORD, roles.REPORT)
    with pytest.raises(users.UserRefused, match="only user with the config role"):
        users.do_remove_user(helper, admin)
    users.do_set_role("test", helper, roles.CONFIG)
    users.do_set_role("test", admin, roles.MAINT)  # now another holds config
    assert roles.role_of(admin) == roles.MAINT


def test_nobody_removes_themself_and_a_refusal_is_said_on_the_page(config_client):
    client, lb = config_client
    admin = users.do_add_user(lb, "admin2", PASSWORD, roles.CONFIG)
    client.force_login(admin)
    response = client.post(reverse("maintenance:user-remove", args=[admin.pk]))
    assert response.status_code == 200
    assert "Not removed: You cannot remove yourself" in response.content.decode()
    assert get_user_model().objects.filter(pk=admin.pk).exists()


def test_a_removed_user_is_logged_out_and_a_demoted_one_loses_rights_at_once(config_client):
    client, lb = config_client
    helper = users.do_add_user(lb, "helper", PASSWORD, roles.MAINT)
    theirs = Client()
    theirs.force_login(helper)
    assert theirs.get(reverse("maintenance:restart-services")).status_code == 200
    client.post(reverse("maintenance:user-edit", args=[helper.pk]),
                {"change_role": "1", "role": "report"})
    assert refused(theirs.get(reverse("maintenance:restart-services")))
    assert AuditEntry.objects.filter(action__contains="from maint to report").exists()
    client.post(reverse("maintenance:user-remove", args=[helper.pk]))
    assert not get_user_model().objects.filter(pk=helper.pk).exists()
    response = theirs.get(reverse("overview:index"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_reset_password_goes_through_the_validators(config_client):
    client, lb = config_client
    helper = users.do_add_user(lb, "helper", PASSWORD, roles.REPORT)
    url = reverse("maintenance:user-edit", args=[helper.pk])
    response = client.post(url, {"reset": "1", "new_password1": "12345678901",
                                 "new_password2": "12345678901"})
    assert "entirely numeric" in response.content.decode()
    client.post(url, {"reset": "1", "new_password1": "Another-long-pass-1",
                      "new_password2": "Another-long-pass-1"})
    helper.refresh_from_db()
    assert helper.check_password("Another-long-pass-1")


def test_report_changes_its_own_password_but_manages_no_users(as_role):
    client = as_role(roles.REPORT)
    page = client.get(reverse("maintenance:passwords")).content.decode()
    assert 'id="own-password"' in page and 'id="users"' not in page
    response = client.post(reverse("maintenance:passwords"), {
        "old_password": PASSWORD, "new_password1": "Reporting-only-9",
        "new_password2": "Reporting-only-9"})
    assert response.status_code == 302
    assert get_user_model().objects.get(username="a-report-user").check_password(
        "Reporting-only-9")
    assert refused(client.post(reverse("maintenance:user-add"), {"username": "x"}))


# -- the HA pair ------------------------------------------------------------------------------

def test_roles_replicate_and_an_older_primarys_users_keep_working():
    lb = get_user_model().objects.create_user(settings.APPLIANCE_USER, password=PASSWORD)
    users.do_add_user(lb, "watcher", PASSWORD, roles.REPORT)
    sent = replication.users()
    assert {u["username"]: u["role"] for u in sent} == {"loadbalancer": "config",
                                                         "watcher": "report"}
    UserRole.objects.all().delete()
    replication._apply_users(sent)
    assert roles.role_of(get_user_model().objects.get(username="watcher")) == roles.REPORT
    older = [{k: v for k, v in u.items() if k != "role"} for u in sent]
    replication._apply_users(older)  # a Primary without roles: everyone could do everything
    assert roles.role_of(get_user_model().objects.get(username="watcher")) == roles.CONFIG
    with pytest.raises(replication.ReplicationRefused, match="no role"):
        replication._apply_users([sent[0] | {"role": ["config"]}])


def test_on_a_secondary_report_is_refused_halt_and_nothing_is_queued(as_role, monkeypatch):
    """The role check composes with the Secondary's rule (ha.middleware): a Halt by `maint`
    applies here and is queued for the Primary; one by `report` is refused, and not queued."""
    for task in (cluster_tasks.apply_dataplane, ha_tasks.replicate_now, ha_tasks.catch_up):
        monkeypatch.setattr(task, "apply_async", lambda *args, **kwargs: None)
    service = VirtualService.objects.create(label="VNA", vip="198.51.100.100", ports="104")
    server = RealServer.objects.create(service=service, label="PrimaryCluster", ip="192.0.2.110")
    Pair.objects.update_or_create(pk=1, defaults={
        "role": "secondary", "secret": "11" * 32, "peer_ip": "192.0.2.2",
        "local_ip": "192.0.2.1", "peer_fingerprint": "b" * 64, "status": "paired",
        "virtual_router_id": 51})
    url = reverse("overview:set-state", args=[server.pk])
    assert refused(as_role(roles.REPORT).post(url, {"state": "halt"}))
    assert RealServer.objects.get().state == "online" and not PendingAction.objects.exists()
    assert as_role(roles.MAINT).post(url, {"state": "halt"}).status_code == 302
    assert RealServer.objects.get().state == "halt"
    assert PendingAction.objects.get().state == "halt"
    # and a user change on a Secondary is refused by its own rule (the Primary holds users)
    response = as_role(roles.CONFIG).post(reverse("maintenance:user-add"), {
        "username": "x1", "password1": PASSWORD, "password2": PASSWORD, "role": "report"})
    assert response.status_code == 302 and not get_user_model().objects.filter(
        username="x1").exists()


@pytest.mark.django_db(transaction=True)
def test_an_upgrade_makes_every_existing_user_config():
    executor = MigrationExecutor(connection)
    executor.migrate([("core", "0001_initial")])
    try:
        old = executor.loader.project_state([("core", "0001_initial")]).apps
        old.get_model("auth", "User").objects.create(username="operator", password="!")
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert roles.role_of(get_user_model().objects.get(username="operator")) == roles.CONFIG
