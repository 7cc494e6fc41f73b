"""Local Configuration › License Key and Portal Management: no key, no portal, said plainly."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from network import licence

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client):
    client.force_login(get_user_model().objects.create_user("loadbalancer", password="x-Long-1"))
    return client


def test_license_key_says_no_key_is_needed_and_shows_the_gpl(browser):
    text = browser.get(reverse("local:license")).content.decode()
    assert "No licence key is needed" in text
    assert "GPL-3.0-or-later" in text
    # the whole licence, from the file every release ships
    assert 'id="licence-text"' in text
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3, 29 June 2007" in text
    assert 'method="post"' not in text.split("<h1>License Key</h1>")[1]  # nothing to enter


def test_license_key_says_so_when_the_licence_file_is_missing(browser, settings, tmp_path):
    settings.BASE_DIR = tmp_path  # an image without LICENSE
    text = browser.get(reverse("local:license")).content.decode()
    assert 'id="licence-missing"' in text and "gpl-3.0.txt" in text
    assert 'id="licence-text"' not in text


def test_the_shipped_licence_is_the_gpl_version_3():
    assert licence.licence_text().lstrip().startswith("GNU GENERAL PUBLIC LICENSE")


def test_portal_management_says_there_is_no_portal_and_offers_no_form(browser):
    text = browser.get(reverse("local:portal")).content.decode()
    assert "no central management portal" in text
    assert "REST API" in text
    assert "Not built yet." not in text
    assert 'method="post"' not in text.split("<h1>Portal Management</h1>")[1]
