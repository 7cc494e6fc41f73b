"""The main menu: the guide's eight sections (5.3.1) and their sub-menus.

One list drives the menu, the page titles and the "not built yet" pages, so a menu entry can
never point nowhere. A page is built when its app's urls.py names a view for it; until then
`with_not_built()` gives it an honest page that says what it will do.
"""

from dataclasses import dataclass

from django.urls import path, reverse

from core import roles

from .views import not_built


@dataclass(frozen=True)
class Page:
    title: str
    slug: str
    planned: str = ""  # what the page will do; shown while it is not built

    def url_name(self, section):
        return f"{section.slug}:{self.slug}"


@dataclass(frozen=True)
class Section:
    title: str
    slug: str
    summary: str
    pages: tuple


MENU = (
    Section("System Overview", "overview",
            "A summary of all virtual services, real servers and key appliance statistics.", (
                Page("System Overview", "index"),
            )),
    Section("Local Configuration", "local",
            "Local host settings such as IP address, DNS, system time.", (
                Page("Hostname & DNS", "hostname-dns",
                     "Set the hostname and up to three DNS servers."),
                Page("Network Interface Configuration", "interfaces",
                     "List the interfaces read live through netlink; edit addresses, MTU, VLANs."),
                Page("Routing", "routing", "Default gateways (IPv4, IPv6) and static routes."),
                Page("System Date & time", "date-time", "Time zone and NTP servers."),
                Page("Physical – Advanced Configuration", "advanced",
                     "Appliance-wide settings such as the online update server."),
                Page("Portal Management", "portal", "Central management of several appliances."),
                Page("Security", "security", "WebUI certificate and access settings."),
                Page("SNMP Configuration", "snmp", "SNMP agent settings."),
                Page("Graphing", "graphing", "What is sampled for the graphs and for how long."),
                Page("License Key", "license",
                     "lbadmin is open source and needs no licence key; this page will say so "
                     "and show the licence."),
                Page("API Keys", "api-keys",
                     "Keys for the REST API and API v2: created, shown once, revoked."),
            )),
    Section("Cluster Configuration", "cluster",
            "Load balanced services: virtual services, real servers, floating IPs, checks.", (
                Page("Layer 4 – Virtual Services", "virtual-services",
                     "Add, modify and delete Layer 4 NAT virtual services (nftables)."),
                Page("Layer 4 – Real Servers", "real-servers",
                     "Add, modify and delete the real servers of each virtual service."),
                Page("Layer 4 – Advanced Configuration", "layer4-advanced",
                     "Alerts: email through the Smart Host, a webhook, SNMP traps."),
                Page("Floating IP's", "floating-ips",
                     "Add and remove floating IPs that the real servers use as their gateway."),
                Page("Health Check Scripts", "health-check-scripts",
                     "Add, edit and delete external health-check scripts and templates."),
                Page("High-Availability Configuration", "ha",
                     "Pair this appliance with a secondary that takes over on failure."),
            )),
    Section("Maintenance", "maintenance",
            "Maintenance tasks such as service restarts and backups.", (
                Page("Backup & Restore", "backup-restore",
                     "Download the configuration as XML, restore one, roll back revisions."),
                Page("Software Update", "software-update",
                     "Online and offline update with a verified checksum and signature."),
                Page("Passwords", "passwords", "Change the loadbalancer user's password."),
                Page("Restart Services", "restart-services",
                     "The state of each service with a restart button."),
                Page("Firewall Script", "firewall-script", "Extra firewall rules."),
                Page("Firewall Lockdown Wizard", "firewall-lockdown",
                     "Limit which networks may reach the WebUI."),
            )),
    Section("View Configuration", "view",
            "The saved appliance configuration and what is live.", (
                Page("Appliance Configuration", "appliance",
                     "The saved configuration, as it would be backed up."),
                Page("Network Configuration", "network",
                     "Interfaces, routes, hostname and DNS as configured and as live."),
                Page("Layer 4", "layer4",
                     "The live nftables ruleset and whether it matches the desired one."),
            )),
    Section("Reports", "reports", "Appliance reports and graphs.", (
        Page("Layer 4 Status", "layer4-status", "The state of every virtual and real server."),
        Page("Layer 4 Traffic Rate", "layer4-traffic", "Connections and bytes per second."),
        Page("Layer 4 Current Connections", "layer4-connections",
             "The tracked connections of each virtual service, from conntrack."),
        Page("Graphs", "graphs", "Load, memory and traffic over time."),
    )),
    Section("Logs", "logs", "Appliance logs.", (
        Page("Layer 4", "layer4", "Every data-plane apply: when, what changed, the result."),
        Page("Health Checks", "health-checks",
             "Health-check transitions and script output, newest first."),
        Page("User Log", "user", "Every change made through the WebUI: who, when, what."),
        Page("System", "system", "The appliance's own log."),
    )),
    Section("Support", "support",
            "Support download, contacts and useful links.", (
                Page("Support Download", "download",
                     "One archive of configuration, logs and state to attach to a bug report."),
                Page("Contact Us", "contact", "Where to report problems with lbadmin."),
                Page("Useful Links", "links", "Documentation for lbadmin and its parts."),
            )),
)


def section(slug):
    return next(s for s in MENU if s.slug == slug)


def with_not_built(section_slug, patterns):
    """`patterns`, plus a "not built" page for every page of the section none of them names."""
    owner = section(section_slug)
    built = {pattern.name for pattern in patterns}
    return list(patterns) + [
        path(f"{page.slug}/", not_built, {"section": owner, "page": page}, name=page.slug)
        for page in owner.pages
        if page.slug not in built
    ]


def menu_for(request):
    """The menu with URLs, and which section and page are current (a page's sub-pages, such
    as a form under it, count as that page)."""
    role = getattr(request, "webui_role", None) or roles.role_of(request.user)
    sections = []
    for owner in MENU:
        pages = []
        for page in owner.pages:
            if not roles.allows(role, page.url_name(owner), "GET"):
                continue  # a page the user's role may not open is not offered
            url = reverse(page.url_name(owner))
            current = request.path == url or (url != "/lbadmin/" and request.path.startswith(url))
            pages.append({"title": page.title, "url": url, "current": current})
        if not pages:
            continue
        sections.append({
            "title": owner.title, "url": pages[0]["url"], "pages": pages,
            "current": any(p["current"] for p in pages),
        })
    return sections
