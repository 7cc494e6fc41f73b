# lbadmin — run as root on Debian 12. `make demo` and `make test` install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# What the appliance runs on, plus what the lab, the tests and the browser need.
DEBIAN_PACKAGES := python3 python3-venv iproute2 iputils-ping iputils-arping nftables conntrack \
	keepalived conntrackd redis-server chromium acl snmpd snmp snmptrapd chrony
BENCH_PACKAGES := wrk nginx-light haproxy gcc libc6-dev

.PHONY: demo test bench lint lab-down debian-packages venv service-user clean release release-version

debian-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES) $(EXTRA_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing >/dev/null; \
		if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then \
			systemctl disable --now keepalived conntrackd snmpd snmptrapd 2>/dev/null || true; fi; \
	fi

# The virtualenv is rebuilt when pyproject.toml (the pins) changes.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,observability,rest-api]'
	touch $@

venv: debian-packages $(VENV)/.installed

# The unprivileged user the services run as (runner/stack.py drops to it when run as root).
# It must reach the code and the interpreter: where a directory above them gives others no
# search (x) permission (a checkout or a pyenv build under /root, 0700), it gets an ACL entry
# granting search, to lbadmin alone — not listing, not reading (lab/reach.sh).
service-user: venv
	@id -u lbadmin >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin lbadmin
	@lab/reach.sh lbadmin "$(CURDIR)" "$$($(PY) -c 'import sys; print(sys.base_prefix)')"

demo: venv service-user
	$(PY) -m lab.demo

test: venv service-user
	$(PY) -m lab down --stale
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

bench: EXTRA_PACKAGES = $(BENCH_PACKAGES)
bench: venv
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# make release VERSION=0.2.0 [NOTES="..."]: a signed update archive in dist/ (makes
# release-key.pem, and trusts its public half, on first use; .dockerignore keeps it, and dist/,
# out of any image).
release: release-version venv
	test -f release-key.pem || $(PY) manage.py lbadmin_release --make-key --key release-key.pem
	$(PY) manage.py lbadmin_release --release-version "$(VERSION)" --notes "$(NOTES)" --key release-key.pem

release-version:
	@if [ -z "$(strip $(VERSION))" ]; then \
		echo 'make release: say which version to build, e.g.' >&2; \
		echo '    make release VERSION=x.y.z [NOTES="what changed"]' >&2; exit 2; fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

lab-down:
	@if [ -x $(PY) ]; then $(PY) -m lab down; else \
		for ns in $$(ip netns list | awk '/^(lbadmin-|lbt-)/ {print $$1}'); do \
			ip netns pids $$ns | xargs -r kill -9; ip netns del $$ns; done; fi

clean: lab-down
	rm -rf $(VENV)
