# The image docker-compose.yml runs. Debian 12, as the appliance; the pins are pyproject.toml's.
FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    python3 python3-venv iproute2 iputils-ping iputils-arping nftables conntrack \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/lbadmin
COPY . .
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -e '.[observability,rest-api]'
# The service user (docker-compose.yml runs every service as 999:999, the official Redis
# image's uid too): the code stays root's and read-only to it.
RUN groupadd --system --gid 999 lbadmin \
 && useradd --system --uid 999 --gid 999 --no-create-home --shell /usr/sbin/nologin lbadmin
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
EXPOSE 9443
