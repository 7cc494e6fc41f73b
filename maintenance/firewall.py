"""Maintenance › Firewall Lockdown Wizard and Firewall Script, as pure functions: the values
they accept and the nftables scripts they become. The dataplane worker applies the scripts
(maintenance.firewall_tasks, through the nft seam); nothing here touches the kernel.

Each feature has an `inet` table of its own, apart from the data plane's `ip lbadmin`, and
every apply rebuilds only that table (`table X` / `delete table X` / `table X {…}`, one
transaction), so neither ever touches the other's — nor does the data plane's full apply,
which deletes `ip lbadmin` alone.

- `inet lbadmin_lockdown`: new connections to the WebUI ports (HTTPS, and plain HTTP when it
  is on) and SSH are admitted only from the administration networks, loopback and the HA
  peer; established connections stay (nobody's open session is cut by a save). Other traffic
  is not looked at.
- `inet lbadmin_script`: the administrator's own chains, sets and rules, wrapped in that table.
  nftables has no per-table permissions, so the wrapper is the guard: the text must stay inside
  the table's braces, may not name a table or the ruleset or include a file, and what is left
  is checked by nft itself before anything changes.
"""

import ipaddress
import re

LOCKDOWN = "lockdown"  # a held lockdown's kind for the lock-out guard (network.guard)
LOCKDOWN_TABLE = "inet lbadmin_lockdown"
SCRIPT_TABLE = "inet lbadmin_script"
SSH_PORT = 22
HTTP_PORT = 9080  # the guide's "WebUI - HTTP" (a redirect to HTTPS), guarded even while off
SCRIPT_MAX_CHARS = 65536


def parse_networks(text):
    """The administration networks of a list (one a line, or separated by commas or spaces):
    a list of ip_network, or ValueError naming the entry that is not a network."""
    networks = []
    for entry in re.split(r"[\s,]+", text.strip()):
        if not entry:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"“{entry[:60]}” is not an IPv4 or IPv6 network in CIDR form "
                             "(e.g. 192.0.2.0/24) or an address.") from None
        if network.prefixlen == 0:
            raise ValueError(f"{network} admits every address: leave the lockdown off "
                             "instead.")
        if network not in networks:
            networks.append(network)
    return networks


def admits(networks, address, peer=None):
    """Whether the lockdown with these networks lets a new connection from `address` in:
    loopback, one of the networks or the HA peer."""
    try:
        address = ipaddress.ip_address(str(address).split("%")[0])
    except ValueError:
        return False
    address = getattr(address, "ipv4_mapped", None) or address
    if address.is_loopback:
        return True
    if peer and str(address) == str(peer):
        return True
    return any(address.version == n.version and address in n for n in networks)


def lockdown_ports(https_port, http_port):
    """The ports the lockdown guards: the WebUI's HTTPS port, its plain HTTP port (9080 unless
    another is set; guarded whether the redirect is on or not, so turning it on under
    Local Configuration › Security needs no new lockdown) and SSH."""
    return tuple(sorted({https_port, http_port or HTTP_PORT, SSH_PORT}))


def render_lockdown(enabled, networks, ports, peer=None):
    """The script that makes `inet lbadmin_lockdown` what it should be (removes it when the
    lockdown is off). One transaction; `table` first because `delete table` fails on an
    absent table."""
    lines = [f"table {LOCKDOWN_TABLE}", f"delete table {LOCKDOWN_TABLE}"]
    if not enabled:
        return "\n".join(lines) + "\n"
    v4 = [str(n) for n in networks if n.version == 4]
    v6 = [str(n) for n in networks if n.version == 6]
    admitted = []
    if v4:
        admitted.append(f"\t\tip saddr {{ {', '.join(v4)} }} accept")
    if v6:
        admitted.append(f"\t\tip6 saddr {{ {', '.join(v6)} }} accept")
    if peer:
        family = "ip6" if ipaddress.ip_address(peer).version == 6 else "ip"
        admitted.append(f"\t\t{family} saddr {peer} accept comment \"HA peer\"")
    port_list = ", ".join(str(p) for p in ports)
    lines += [
        f"table {LOCKDOWN_TABLE} {{",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy accept;",
        f"\t\ttcp dport {{ {port_list} }} jump guarded",
        "\t}",
        "\tchain guarded {",
        '\t\tiif "lo" accept',
        "\t\tct state established,related accept",
        *admitted,
        "\t\treject with tcp reset",
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


# -- the Firewall Script --------------------------------------------------------------------

# What may start a statement directly inside the table (nft's table block).
TABLE_STATEMENTS = {"chain", "set", "map", "flowtable", "counter", "quota", "limit", "ct",
                    "secmark", "synproxy", "comment", "flags", "define", "redefine",
                    "undefine"}
# Words that would reach outside the wrapper: refused wherever they stand (outside strings
# and comments). No rule statement uses them.
FORBIDDEN_WORDS = {
    "table": "names a table: write only chains, sets and rules; lbadmin puts them in its "
             f"table `{SCRIPT_TABLE}`",
    "ruleset": "names the whole ruleset, which holds lbadmin's own tables",
    "flush": "flushes: the script's table is rebuilt whole at every save anyway",
    "include": "includes a file: paste the rules themselves",
}
WRAPPER_LINES = 3  # the lines of the wrapper before the administrator's first line


class ScriptRefused(ValueError):
    """The script cannot be wrapped safely; the message names the line."""


def _tokens(script):
    """(line number, token) of the script's words and braces, leaving out comments and the
    insides of quoted strings (which may hold braces and any word)."""
    for number, line in enumerate(script.split("\n"), start=1):
        position = 0
        while position < len(line):
            char = line[position]
            if char == "#":
                break
            if char == '"':
                end = line.find('"', position + 1)
                if end < 0:
                    raise ScriptRefused(f"Line {number}: a quoted string is not closed.")
                yield number, '"…"'
                position = end + 1
                continue
            if char in "{};":
                yield number, char
                position += 1
                continue
            match = re.compile(r"[^\s{};#\"]+").match(line, position)
            if match:
                yield number, match.group()
                position = match.end()
            else:
                position += 1
        yield number, "\n"


def check_script(script):
    """Refuse a script that would reach outside `table inet lbadmin_script { … }`: a brace
    that closes the table, a word naming a table or the ruleset, `flush`, `include`, or a
    statement the table block does not take. What passes is still checked by nft itself."""
    if len(script) > SCRIPT_MAX_CHARS:
        raise ScriptRefused(f"The script is longer than {SCRIPT_MAX_CHARS} characters.")
    if "\x00" in script:
        raise ScriptRefused("The script holds a NUL character.")
    if "\\" in script:
        raise ScriptRefused("Backslashes (line continuations) are not accepted: write each "
                            "statement on its own line.")
    depth, statement_start = 0, True
    for number, piece in _tokens(script):
        if piece in ("\n", ";"):
            statement_start = True
            continue
        if piece == "{":
            depth += 1
            statement_start = True
            continue
        if piece == "}":
            depth -= 1
            if depth < 0:
                raise ScriptRefused(f"Line {number}: this “}}” closes a brace the script did not "
                                    f"open (it would end lbadmin's table `{SCRIPT_TABLE}`).")
            statement_start = True
            continue
        word = piece.lower()
        if word in FORBIDDEN_WORDS:
            raise ScriptRefused(f"Line {number}: “{piece}” {FORBIDDEN_WORDS[word]}.")
        if depth == 0 and statement_start and word not in TABLE_STATEMENTS:
            raise ScriptRefused(
                f"Line {number}: “{piece[:40]}” cannot start a statement here: the script holds "
                "chains, sets, maps and the like (e.g. `chain input { … }`).")
        statement_start = False
    if depth:
        raise ScriptRefused(f"{depth} “{{” not closed by the end of the script.")


def render_script(script):
    """The script that makes `inet lbadmin_script` hold the administrator's text (removes the
    table when the text is empty). Call check_script first."""
    lines = [f"table {SCRIPT_TABLE}", f"delete table {SCRIPT_TABLE}"]
    body = script.replace("\r\n", "\n").rstrip()
    if body.strip():
        lines += [f"table {SCRIPT_TABLE} {{", body, "}"]
    return "\n".join(lines) + "\n"


NFT_LOCATION = re.compile(r"^(?:/dev/stdin|<cmdline>|-|/dev/fd/\d+):(\d+):(\d+)(-\d+)?: ",
                          re.MULTILINE)


def administrators_lines(error):
    """nft's message about a wrapped script, its line numbers made the administrator's own
    ("line 4:3-10: Error: …"): the wrapper's lines before the text are taken off."""

    def renumber(match):
        line = int(match.group(1)) - WRAPPER_LINES
        where = f"line {line}:{match.group(2)}{match.group(3) or ''}" if line >= 1 else \
            "lbadmin's wrapper"
        return f"{where}: "

    return NFT_LOCATION.sub(renumber, error.strip())
