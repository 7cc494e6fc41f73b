"""Helpers for tests and benchmarks that drive running stacks: run Django code against one,
and wait for what a real process does in its own time."""

import html
import http.client
import re
import ssl
import subprocess
import sys
import time
import urllib.parse


def in_stack(stack, code, *args, timeout=120):
    """Python with Django set up on the stack's own data directory (the services' database),
    as a process of the appliance would run it."""
    script = "import django; django.setup()\n" + code
    result = subprocess.run([sys.executable, "-c", script, *map(str, args)],
                            cwd=stack.code_dir, env=stack.code_env(), capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def in_appliance(stack, code, *args, timeout=120):
    """Python with Django set up on the stack's data directory, run where and as its
    maintenance worker runs (the appliance's namespace, the service user, no capability)."""
    script = "import django; django.setup()\n" + code
    command = [*stack.lab.exec_prefix(stack.lab_role), *stack.as_service("worker-maintenance"),
               sys.executable, "-c", script, *map(str, args)]
    result = subprocess.run(command, cwd=stack.code_dir,
                            env={**stack.code_env(), **stack.lab_env()}, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def wait_for(probe, timeout, every=0.05):
    """probe()'s first true value within `timeout` seconds, else its last (false) one."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def holds_steadily(probe, seconds, every=0.1):
    """True when `probe()` is true at every poll for `seconds` (a state that must hold)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not probe():
            return False
        time.sleep(every)
    return bool(probe())


class WebUISession:
    """A session with the WebUI over one keep-alive HTTPS connection (its cookies), sending
    what a browser and htmx send."""

    def __init__(self, port):
        self.port = port
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE  # the appliance's self-signed certificate
        self.cookies = {}
        self.connection = None
        self.base = f"https://127.0.0.1:{port}"

    def request(self, method, path, body=None, headers=None):
        """(status, body text, seconds) — one retry on a connection the server closed."""
        headers = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPSConnection(
                    "127.0.0.1", self.port, context=self.context, timeout=30)
            started = time.perf_counter()
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                text = response.read().decode()
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
                continue
            elapsed = time.perf_counter() - started
            for name, value in response.getheaders():
                if name.lower() == "set-cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key] = rest.split(";")[0]
            return response.status, text, elapsed
        raise RuntimeError("unreachable")

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def log_in(self, password):
        _status, page, _ = self.request("GET", "/lbadmin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        status, _, _ = self.request(
            "POST", "/lbadmin/login/",
            body=urllib.parse.urlencode({"username": "loadbalancer", "password": password,
                                         "csrfmiddlewaretoken": token}),
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Referer": f"{self.base}/lbadmin/login/"})
        if status != 302:
            raise RuntimeError(f"login answered {status}")

    def get(self, path, **params):
        """The page's text (entities unescaped); AssertionError unless it answered 200."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        status, text, _ = self.request("GET", path + query)
        assert status == 200, (status, text[:500])
        return html.unescape(text)

    def htmx(self, method, path, trigger, body=None):
        headers = {"HX-Request": "true", "HX-Trigger": trigger, "HX-Target": trigger,
                   "HX-Current-URL": f"{self.base}/lbadmin/"}
        if method == "POST":
            headers.update({"X-CSRFToken": self.cookies["lbadmin_csrftoken"],
                            "Referer": f"{self.base}/lbadmin/",
                            "Content-Type": "application/x-www-form-urlencoded"})
        return self.request(method, path, body=body, headers=headers)
