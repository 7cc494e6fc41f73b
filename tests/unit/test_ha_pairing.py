"""High-Availability Configuration: the Create a Clustered Pair form, the peer's pairing
endpoint (password through the login's throttle, refusals in words), the Primary's side of
pairing over a fake transport, and the signatures of every later call."""

import hashlib
import json
import socket
import ssl
import threading
import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from appliance.models import FailedLogin
from clusters.models import FloatingIP, VirtualService
from core.version import __version__
from core.workers import WorkerUnavailable
from ha import pairing, peer, replication
from ha.models import Pair
from maintenance.certificate import ensure_certificate, paths
from maintenance.fetch import FetchError, PinnedTLS
from network.models import NetworkConfiguration

pytestmark = pytest.mark.django_db

PASSWORD = "a-Long-test-pass"
PRIMARY_FP = "a" * 64
PEER_FP = "b" * 64


@pytest.fixture
def addresses():
    network = NetworkConfiguration.load()
    network.interfaces = {"eth0": {"addresses": ["192.0.2.1/24"], "mtu": None},
                          "eth1": {"addresses": ["198.51.100.1/24", "fe80::1/64"], "mtu": None}}
    network.save()


@pytest.fixture
def user():
    return get_user_model().objects.create_user("loadbalancer", password=PASSWORD)


@pytest.fixture
def browser(user):
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    return client


@pytest.fixture
def no_daemons(monkeypatch):
    calls = []
    monkeypatch.setattr(pairing.vrrp, "configure", lambda pair: calls.append(("configure",
                                                                             pair.role)))
    monkeypatch.setattr(pairing.vrrp, "unconfigure", lambda: calls.append(("unconfigure",)))
    return calls


def pair_request(**changes):
    return {"username": "loadbalancer", "password": PASSWORD, "primary_ip": "192.0.2.9",
            "secondary_ip": "192.0.2.1", "fingerprint": PRIMARY_FP, "version": __version__,
            "hostname": "lb1", "secret_part": "c" * 64, "virtual_router_id": 51} | changes


def post_pair(client, **changes):
    return client.post(reverse("cluster:ha-peer-pair"), json.dumps(pair_request(**changes)),
                       content_type="application/json")


# -- the form --------------------------------------------------------------------------------

def test_a_standalone_appliance_offers_to_create_a_clustered_pair(browser, addresses):
    page = browser.get(reverse("cluster:ha")).content.decode()
    assert "Create a Clustered Pair" in page and "Add new node" in page
    for label in ("Local IP address", "IP address of new peer",
                  "Password for loadbalancer user on peer"):
        assert label in page
    assert '<option value="192.0.2.1">' in page and '<option value="198.51.100.1">' in page
    assert "fe80::1" not in page  # link-local: not an address to pair from


def test_the_local_ip_must_be_one_of_this_appliances_addresses(browser, addresses):
    FloatingIP.objects.create(address="192.0.2.254")
    response = browser.post(reverse("cluster:ha"), {"local_ip": "192.0.2.254",
                                                    "peer_ip": "192.0.2.2",
                                                    "password": "x"})
    assert response.status_code == 200
    assert "192.0.2.254 is not one of the available choices" in response.content.decode()
    assert Pair.load().status == ""


def test_the_peer_may_not_be_this_appliance(browser, addresses):
    response = browser.post(reverse("cluster:ha"), {"local_ip": "192.0.2.1",
                                                    "peer_ip": "192.0.2.1", "password": "x"})
    assert "The peer&#x27;s address is this appliance&#x27;s own" in response.content.decode()


def test_add_new_node_hands_the_sealed_password_to_the_worker(browser, addresses, monkeypatch):
    sent = []
    monkeypatch.setattr("ha.views.send_task", lambda task, *args: sent.append((task.name,
                                                                               args)))
    response = browser.post(reverse("cluster:ha"), {"local_ip": "192.0.2.1",
                                                    "peer_ip": "192.0.2.2",
                                                    "password": PASSWORD})
    assert response.status_code == 302
    (name, (local_ip, peer_ip, sealed, username)), = sent
    assert name == "ha.tasks.pair" and (local_ip, peer_ip) == ("192.0.2.1", "192.0.2.2")
    assert PASSWORD not in sealed and pairing.unseal(sealed) == PASSWORD
    assert Pair.load().status == Pair.Status.PAIRING
    page = browser.get(reverse("cluster:ha")).content.decode()
    assert "Attempting to pair.." in page and 'hx-trigger="every 1s"' in page
    assert PASSWORD not in json.dumps(list(Pair.objects.values()), default=str)


def test_a_dead_worker_is_said_next_to_the_form(browser, addresses, monkeypatch):
    def refuse(*args):
        raise WorkerUnavailable("Redis is down (test).")

    monkeypatch.setattr("ha.views.send_task", refuse)
    response = browser.post(reverse("cluster:ha"), {"local_ip": "192.0.2.1",
                                                    "peer_ip": "192.0.2.2",
                                                    "password": PASSWORD})
    assert "the maintenance worker cannot be reached" in response.content.decode()
    assert Pair.load().status == Pair.Status.FAILED


# -- the peer's pairing endpoint ----------------------------------------------------------------

def test_the_peer_accepts_a_pairing_with_the_right_password(client, user, addresses,
                                                            no_daemons):
    response = post_pair(client)
    assert response.status_code == 200, response.content
    answer = response.json()
    pair = Pair.load()
    assert pair.role == "secondary" and pair.local_ip == "192.0.2.1"
    assert pair.peer_ip == "192.0.2.9" and pair.peer_fingerprint == PRIMARY_FP
    assert pair.secret == pairing.combine("c" * 64, answer["secret_part"])
    assert answer["version"] == __version__ and pair.virtual_router_id == 51


def test_the_peer_refuses_a_wrong_password_and_counts_it_as_a_refused_login(client, user,
                                                                            addresses):
    response = post_pair(client, password="wrong")
    assert response.status_code == 403
    assert response.json() == {"error": "Wrong password for the loadbalancer user.",
                               "field": "password"}
    assert FailedLogin.objects.count() == 1 and Pair.load().role == "standalone"


def test_the_peer_is_throttled_like_the_login(client, user, addresses):
    for _ in range(5):
        assert post_pair(client, password="wrong").status_code == 403
    response = post_pair(client)  # even the right password is not evaluated now
    assert response.status_code == 429
    assert response.json()["error"].startswith("Too many refused logins from your address")
    assert Pair.load().role == "standalone"
    login = Client().post(reverse("login"), {"username": "loadbalancer", "password": PASSWORD})
    assert "Too many refused logins" in login.content.decode()  # one guard for both


@pytest.mark.parametrize(("setup", "changes", "words"), [
    ("service", {}, "It already has 1 virtual service"),
    ("floating", {}, "It already has 1 floating IP"),
    (None, {"version": "9.9.9"}, "update one so both run the same release"),
    ("paired", {}, "already the Secondary of a clustered pair"),
    (None, {"secondary_ip": "192.0.2.77"}, "192.0.2.77 is not one of its own addresses"),
])
def test_the_peer_refuses_in_words(client, user, addresses, setup, changes, words):
    if setup == "service":
        VirtualService.objects.create(label="VNA", vip="192.0.2.100", ports="104")
    elif setup == "floating":
        FloatingIP.objects.create(address="192.0.2.254")
    elif setup == "paired":
        Pair.objects.update_or_create(pk=1, defaults={"role": "secondary", "secret": "00",
                                                      "local_ip": "192.0.2.1",
                                                      "peer_ip": "192.0.2.8"})
    response = post_pair(client, **changes)
    assert response.status_code == 409
    assert words in response.json()["error"]
    assert Pair.load().role == ("secondary" if setup == "paired" else "standalone")


def test_the_peer_endpoint_answers_garbage_in_words(client, user):
    response = client.post(reverse("cluster:ha-peer-pair"), b"\xff{", content_type="x/y")
    assert response.status_code == 400 and "not a JSON object" in response.json()["error"]
    assert client.get(reverse("cluster:ha-peer-pair")).status_code == 405


# -- the Primary's side, over a fake transport ---------------------------------------------------

class FakePeer:
    """The other node: answers each call from a table; records what it was sent."""

    def __init__(self, answers, fingerprint=PEER_FP):
        self.answers, self.fingerprint, self.calls = answers, fingerprint, []

    def __call__(self, url, body, headers, pin):
        name = url.rstrip("/").rsplit("/", 1)[1]
        self.calls.append((name, json.loads(body), headers, pin, url))
        answer = self.answers[name]
        if isinstance(answer, Exception):
            raise answer
        status, data = answer(json.loads(body)) if callable(answer) else answer
        return status, json.dumps(data).encode(), self.fingerprint


def test_do_pair_pins_the_peers_certificate_and_replicates(addresses, user, no_daemons,
                                                           monkeypatch):
    fake = FakePeer({"pair": (200, {"secret_part": "d" * 64, "version": __version__,
                                    "hostname": "lb2", "fingerprint": PEER_FP}),
                     "replicate": lambda data: (200, {"acked": data["generation"],
                                                      "state": "passive"})})
    monkeypatch.setattr(peer, "transport", fake)
    pair = pairing.do_pair("192.0.2.1", "192.0.2.2", PASSWORD, user)
    assert pair.status == Pair.Status.PAIRED and pair.role == "primary"
    assert pair.peer_fingerprint == PEER_FP and pair.peer_hostname == "lb2"
    (name, sent, _headers, pin, url), replicate = fake.calls[0], fake.calls[1]
    assert url == "https://192.0.2.2:9443/lbadmin/cluster/ha/peer/pair/"
    assert name == "pair" and pin is None and sent["password"] == PASSWORD
    assert sent["username"] == "loadbalancer" and sent["version"] == __version__
    assert replicate[0] == "replicate" and replicate[3] == PEER_FP  # pinned from now on
    assert peer.SIGNATURE_HEADER in replicate[2]
    assert pair.secret == pairing.combine(sent["secret_part"], "d" * 64)
    assert no_daemons == [("configure", "primary")]
    assert pair.peer_state == "passive"
    assert PASSWORD not in json.dumps(list(Pair.objects.values()), default=str)


def test_the_peers_refusal_is_shown_next_to_the_field(addresses, user, browser, monkeypatch):
    monkeypatch.setattr(peer, "transport", FakePeer({"pair": (
        403, {"error": "Wrong password for the loadbalancer user.", "field": "password"})}))
    pair = pairing.do_pair("192.0.2.1", "192.0.2.2", "wrong", user)
    assert pair.status == Pair.Status.FAILED and pair.role == "standalone"
    assert pair.message_field == "password"
    page = browser.get(reverse("cluster:ha")).content.decode()
    assert 'id="ha-failed-password"' in page and "Wrong password for the loadbalancer" in page


def test_an_unreachable_peer_is_said(addresses, user, monkeypatch):
    monkeypatch.setattr(peer, "transport", FakePeer({"pair": FetchError("connection refused")}))
    pair = pairing.do_pair("192.0.2.1", "192.0.2.2", PASSWORD, user)
    assert pair.status == "failed" and "cannot be reached: connection refused" in pair.message


def test_the_primary_refuses_before_asking_anyone(addresses, user, monkeypatch):
    fake = FakePeer({})
    monkeypatch.setattr(peer, "transport", fake)
    assert "not one of this appliance's addresses" in \
        pairing.do_pair("192.0.2.200", "192.0.2.2", PASSWORD, user).message
    assert "this appliance's own" in pairing.do_pair("192.0.2.1", "192.0.2.1", PASSWORD,
                                                     user).message
    assert fake.calls == []


def test_a_certificate_other_than_the_one_the_peer_names_is_refused(addresses, user,
                                                                    monkeypatch):
    monkeypatch.setattr(peer, "transport", FakePeer({"pair": (
        200, {"secret_part": "d" * 64, "version": __version__, "fingerprint": "e" * 64})}))
    pair = pairing.do_pair("192.0.2.1", "192.0.2.2", PASSWORD, user)
    assert pair.role == "standalone" and "someone is in between" in pair.message


# -- signatures and the pinned certificate ---------------------------------------------------------

SECRET = "11" * 32


def test_a_signature_holds_only_with_the_secret_the_body_and_a_recent_time():
    body = b'{"generation": 3}'
    headers = peer.signed_headers(SECRET, body, now=1000)
    stamp, good = headers[peer.TIMESTAMP_HEADER], headers[peer.SIGNATURE_HEADER]
    assert peer.refusal_of_signature(SECRET, stamp, good, body, now=1000) is None
    assert peer.refusal_of_signature(SECRET, stamp, good, body, now=1060) is None
    assert "61 s away" in peer.refusal_of_signature(SECRET, stamp, good, body, now=1061)
    assert "61 s away" in peer.refusal_of_signature(SECRET, stamp, good, body, now=939)
    assert "signature is wrong" in peer.refusal_of_signature("22" * 32, stamp, good, body,
                                                             now=1000)
    assert "signature is wrong" in peer.refusal_of_signature(SECRET, stamp, good, body + b" ",
                                                             now=1000)
    assert "signature is wrong" in peer.refusal_of_signature(SECRET, "1001", good, body,
                                                             now=1000)
    assert "not signed" in peer.refusal_of_signature(SECRET, None, None, body)
    assert "not paired" in peer.refusal_of_signature("", stamp, good, body)


def test_a_signed_endpoint_refuses_a_call_not_signed_with_the_pairs_secret(client):
    Pair.objects.update_or_create(pk=1, defaults={"role": "secondary", "secret": SECRET,
                                                  "peer_ip": "192.0.2.9"})
    body = json.dumps({"state": "active"}).encode()
    url = reverse("cluster:ha-peer-status")

    def send(headers):
        return client.post(url, body, content_type="application/json",
                           headers={k: v for k, v in headers.items() if k != "Content-Type"})

    assert send({}).status_code == 403
    assert send(peer.signed_headers("22" * 32, body)).status_code == 403
    old = send(peer.signed_headers(SECRET, body, now=time.time() - 120))
    assert old.status_code == 403 and "away from this appliance's clock" in old.json()["error"]
    good = send(peer.signed_headers(SECRET, body))
    assert good.status_code == 200 and good.json()["role"] == "secondary"


def test_the_pinned_certificate_is_the_only_one_accepted():
    der = b"certificate bytes"
    PinnedTLS(hashlib.sha256(der).hexdigest()).check(der)
    with pytest.raises(FetchError, match="not the one pinned at pairing"):
        PinnedTLS("0" * 64).check(der)
    unpinned = PinnedTLS()
    unpinned.check(der)
    assert unpinned.seen == hashlib.sha256(der).hexdigest()


def test_the_real_transport_refuses_a_different_certificate_before_sending(monkeypatch):
    """Through maintenance.fetch against a local TLS server with another certificate."""
    ensure_certificate(settings.DATA_DIR)
    cert, key = paths(settings.DATA_DIR)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received = []

    def serve():
        connection, _ = listener.accept()
        try:
            with context.wrap_socket(connection, server_side=True) as tls:
                received.append(tls.recv(100))
        except (ssl.SSLError, OSError):
            received.append(b"")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with pytest.raises(FetchError, match="not the one pinned"):
        peer.https_transport(f"https://127.0.0.1:{port}/lbadmin/cluster/ha/peer/status/",
                             b"{}", {"Content-Type": "application/json"}, "0" * 64)
    thread.join(5)
    listener.close()
    assert received == [b""]  # nothing was sent over it
    assert peer.own_fingerprint() and len(peer.own_fingerprint()) == 64
    assert replication.STALE_AFTER > 0
