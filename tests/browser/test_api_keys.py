"""Local Configuration › API Keys and Support › Useful Links › REST API in Debian's Chromium:
a key is created and shown once, works against the REST API over HTTPS, is refused once
revoked; the REST API's Swagger UI renders from the appliance's own files under the WebUI's
CSP, with no violation."""

import http.client
import json
import ssl

import pytest
from playwright.sync_api import expect

from .conftest import log_in

pytestmark = pytest.mark.browser


def api_status(port, key, path="/api/v1/apply-state"):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {key}",
                                                 "Host": f"127.0.0.1:{port}"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def test_a_key_is_made_shown_once_used_and_revoked(page, webui, appliance_stack):
    log_in(page, webui, appliance_stack.generated_password)
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Local Configuration", exact=True).click()
    menu.get_by_role("link", name="API Keys").click()
    page.get_by_role("button", name="Create Key").click()
    expect(page.locator("#field-name .field-error")).to_have_text(
        "Enter a name for the key, e.g. ansible.")
    page.get_by_label("Name").fill("browser-test")
    page.get_by_label("User").select_option(label="loadbalancer (config)")
    page.get_by_role("button", name="Create Key").click()
    expect(page.locator("#new-key")).to_contain_text("it will not be shown again")
    key = page.locator("#new-key-text").inner_text()
    assert key.startswith("lba_")
    status, state = api_status(appliance_stack.https_port, key)
    assert status == 200 and "generation" in state

    menu.get_by_role("link", name="API Keys").click()
    expect(page.locator("#new-key")).to_have_count(0)  # shown once
    row = page.locator("#api-keys tr", has_text="browser-test")
    expect(row).to_contain_text(key[:12])
    expect(row).to_contain_text("active")
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".message.success")).to_contain_text("API key browser-test revoked")
    expect(page.locator("#api-keys tr", has_text="browser-test")).to_contain_text("revoked")
    status, body = api_status(appliance_stack.https_port, key)
    assert status == 401 and "No valid API key" in body["errors"]["__all__"][0]


def test_the_rest_api_document_renders_under_the_csp(page, webui, appliance_stack):
    violations = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text or message.type == "error" else None)
    log_in(page, webui, appliance_stack.generated_password)
    menu = page.get_by_role("navigation", name="Main menu")
    menu.get_by_role("link", name="Support", exact=True).click()
    menu.get_by_role("link", name="Useful Links").click()
    page.locator("#rest-api-link").get_by_role("link", name="the REST API's documentation") \
        .click()
    expect(page.locator("#swagger-ui")).to_contain_text("lbadmin REST API")
    expect(page.locator("#swagger-ui")).to_contain_text("/api/v1/virtual-services")
    expect(page.locator("#swagger-ui .authorize")).to_be_visible()
    assert not violations, violations
