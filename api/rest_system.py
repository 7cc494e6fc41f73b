"""REST resources of Local Configuration and Maintenance: hostname & DNS (read, update),
interfaces (read, update) and routes (read), backups (download; restore for config),
software updates as jobs, Restart Services. The same forms and actions as the WebUI's pages."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import ModelSchema, Router, Schema, Status

from core.audit import record_audit
from core.runtime import supervisor_state
from core.version import __version__
from core.workers import WorkerUnavailable, ask_dataplane, send_task
from maintenance import backup, online, restarts, update_jobs
from maintenance.models import OnlineUpdate, UpdateJob
from maintenance.tasks import check_for_update
from network import services as network_services
from network.forms import HostnameDnsForm
from network.models import NetworkConfiguration
from network.tasks import write_resolver_files
from network.views import browser_address

from .lbcli import HELD_IN_THE_WEBUI
from .rest_base import Refused, bind, body_schema, json_body, refuse, refuse_on_a_secondary, valid

router = Router()


class Errors(Schema):
    errors: dict[str, list[str]]


REFUSALS = {400: Errors, 403: Errors, 404: Errors}


# -- Hostname & DNS, interfaces, routing -------------------------------------------------

class HostnameDnsOut(Schema):
    hostname: str
    dns1: str
    dns2: str
    dns3: str
    warnings: list[str] = []


def _hostname_dns(stored, warnings=()):
    dns = (list(stored.dns) + ["", "", ""])[:3]
    return {"hostname": stored.hostname, "dns1": dns[0], "dns2": dns[1], "dns3": dns[2],
            "warnings": list(warnings)}


@router.get("/network/hostname-dns", url_name="hostname-dns", tags=["network"],
            response=HostnameDnsOut)
def get_hostname_dns(request):
    return _hostname_dns(NetworkConfiguration.load())


@router.patch("/network/hostname-dns", url_name="hostname-dns", tags=["network"],
              response={200: HostnameDnsOut, **REFUSALS},
              openapi_extra=body_schema(HostnameDnsForm, partial=True))
def update_hostname_dns(request):
    """Hostname & DNS: the fields named change (an empty dnsN removes that server). Saved,
    then written by the dataplane worker; `warnings` says what could not be written yet."""
    initial = _hostname_dns(NetworkConfiguration.load())
    form = valid(bind(HostnameDnsForm, json_body(request), initial=initial))
    stored = network_services.do_save_hostname_dns(
        form.cleaned_data["hostname"],
        [form.cleaned_data[f] for f in ("dns1", "dns2", "dns3") if form.cleaned_data[f]],
        request.auth)
    warnings = []
    try:
        ask_dataplane(write_resolver_files, hostname=stored.hostname, dns=stored.dns)
    except WorkerUnavailable as problem:
        warnings.append(f"Saved, but not written yet: {problem}")
    if problem := network_services.refresh_snmp():  # the hostname is SNMP's sysName
        warnings.append(f"SNMP's sysName is not updated yet: {problem}")
    return _hostname_dns(stored, warnings)


@router.get("/network/interfaces", url_name="interfaces", tags=["network"])
def get_interfaces(request):
    """The configured addresses and VLANs, and the interfaces as the dataplane worker reads
    them live (`live` is null with `error` when it does not answer)."""
    stored = NetworkConfiguration.load()
    live, error = network_services.live_interfaces()
    return {"configured": {"interfaces": stored.interfaces, "vlans": stored.vlans},
            "live": live, "error": error}


INTERFACES_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "description": "The interfaces that change, by name; the "
               "others keep what they have.", "additionalProperties": {
                   "type": "object", "additionalProperties": False, "properties": {
                       "addresses": {"type": "array", "items": {"type": "string"},
                                     "description": "Every address of the interface, CIDR "
                                                    "form (IPv4 or IPv6); [] removes them."},
                       "mtu": {"type": ["integer", "null"],
                               "description": "MTU bytes (68 to 9216); null: as the "
                                              "interface has it."}}}},
    "example": {"eth1": {"addresses": ["198.51.100.1/24"]}}}}}}


def _interface_changes(payload):
    """{name: {"addresses": [...], "mtu": n}} from the body, or a refusal in words (400)."""
    errors = {}
    for name, settings in payload.items():
        if not isinstance(settings, dict):
            errors[name] = ["Give the interface's settings as an object, e.g. "
                            "{\"addresses\": [\"198.51.100.1/24\"]}."]
            continue
        unknown = sorted(set(settings) - {"addresses", "mtu"})
        if unknown:
            errors[name] = [f"There is no setting {', '.join(map(repr, unknown))}: an "
                            "interface has addresses and mtu."]
        addresses = settings.get("addresses", [])
        if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
            errors[f"addresses_{name}"] = ["Give the addresses as a list of CIDR strings, "
                                           "e.g. [\"198.51.100.1/24\"]."]
        if isinstance(settings.get("mtu"), dict | list | bool):
            errors[f"mtu_{name}"] = ["Enter the MTU as a whole number."]
    if not payload:
        errors["__all__"] = ["Name the interfaces that change, e.g. "
                             "{\"eth1\": {\"addresses\": [\"198.51.100.1/24\"]}}; nothing "
                             "was changed."]
    if errors:
        raise Refused(400, errors)
    return payload


@router.patch("/network/interfaces", url_name="interfaces", tags=["network"],
              response={200: dict, **REFUSALS, 503: Errors}, openapi_extra=INTERFACES_BODY)
def update_interfaces(request):
    """Network Interface Configuration's IP Address Assignment (the guide's 6.1.1): the
    interfaces named get the addresses and MTU given, through the page's form and action;
    errors are the form's (`addresses_eth1`, `mtu_eth1`). The kernel takes the change before
    it is saved. A change the lock-out guard would hold (it removes the address this call
    came to, or every address of a subnet the servers live in) is refused: make it in the
    WebUI, where it can be confirmed."""
    changed = _interface_changes(json_body(request))
    listing, error = network_services.live_interfaces()
    if listing is None:
        refuse(503, error)
    form = valid(network_services.interfaces_form(listing, changed=changed))
    changes = network_services.interfaces_change(form)
    arrived_on = browser_address(request)
    if reasons := network_services.lockout_reasons(changes, arrived_on):
        raise Refused(400, {"__all__": [*reasons, HELD_IN_THE_WEBUI]})
    try:
        network_services.do_configure_network(changes, request.auth, arrived_on)
    except network_services.NetworkRefused as refused:
        field = refused.field if refused.field in form.fields else "__all__"
        refuse(400, f"{refused} The previous settings stay.", field=field)
    except WorkerUnavailable as problem:
        refuse(503, f"{problem} Nothing was changed.")
    return get_interfaces(request)


@router.get("/network/routes", url_name="routes", tags=["network"])
def get_routes(request):
    stored = NetworkConfiguration.load()
    return {"gateway4": stored.gateway4, "gateway6": stored.gateway6, "routes": stored.routes}


# -- Backup & Restore ---------------------------------------------------------------------

@router.get("/backup", url_name="backup", tags=["backup"],
            response={200: None, 403: Errors},
            openapi_extra={"responses": {200: {"description": "The configuration as XML",
                                                 "content": {"application/xml": {}}}}})
def download_backup(request):
    """The whole configuration as the XML Backup & Restore downloads (unencrypted)."""
    data = backup.export_xml()
    record_audit(request.auth, "downloaded a backup")
    response = HttpResponse(data, content_type="application/xml")
    name = timezone.now().strftime("lbadmin-backup-%Y%m%d-%H%M%S.xml")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class RestoredOut(Schema):
    restored: bool
    converted_from: int | None = None


@router.post("/backup/restore", url_name="backup-restore", tags=["backup"],
             response={200: RestoredOut, **REFUSALS, 413: Errors},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/xml": {"schema": {"type": "string"}},
                 "application/octet-stream": {"schema": {"type": "string",
                                                         "format": "binary"}}}}})
def restore_backup(request):
    """Restore a backup (the body: its XML, or the encrypted file with its passphrase in the
    `X-Backup-Passphrase` header). All or nothing, checked as the WebUI's restore; then the
    data plane and the network are applied. The config role only."""
    refuse_on_a_secondary(request)
    # read from the stream, up to the WebUI's limit for a backup (10 MiB), not Django's
    # limit for a form body (request.body: 2.5 MB)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    data = request.read(backup.MAX_BYTES + 1) if declared <= backup.MAX_BYTES else b""
    if declared > backup.MAX_BYTES or len(data) > backup.MAX_BYTES:
        refuse(413, "Not restored: the file is larger than 10 MiB. Nothing was changed.",
               field="backup")
    try:
        data = backup.decrypt(data, request.headers.get("X-Backup-Passphrase", ""))
        parsed = backup.parse(data)
        backup.restore(parsed, request.auth)
    except backup.BackupError as refused:
        refuse(400, f"Not restored: {refused} Nothing was changed.", field="backup")
    return {"restored": True, "converted_from": parsed["converted_from"] or None}


# -- Software Update ----------------------------------------------------------------------

class UpdateJobOut(ModelSchema):
    class Meta:
        model = UpdateJob
        fields = ["id", "created", "finished", "user", "from_version", "to_version",
                  "source_url", "status", "progress", "log"]


class OfferOut(Schema):
    running: str
    checking_enabled: bool
    checked_at: str | None
    available_version: str | None
    message: str = ""


def _offer(message=""):
    row = OnlineUpdate.load()
    offer = online.offered()
    return {"running": __version__, "checking_enabled": online.asks(row),
            "checked_at": row.checked_at.isoformat() if row.checked_at else None,
            "available_version": offer.available_version if offer else None,
            "message": message}


@router.get("/updates", url_name="updates", tags=["software update"], response=OfferOut)
def get_updates(request):
    """The running version and what the update server offers (as of the last check)."""
    return _offer()


@router.get("/updates/jobs", url_name="update-jobs", tags=["software update"],
            response=list[UpdateJobOut])
def list_update_jobs(request):
    return UpdateJob.objects.all()[:50]


@router.get("/updates/jobs/{int:job_id}", url_name="update-job", tags=["software update"],
            response={200: UpdateJobOut, 404: Errors})
def get_update_job(request, job_id: int):
    """A job's status and log: poll until `status` is settled."""
    return get_object_or_404(UpdateJob, pk=job_id)


@router.post("/updates/check", url_name="update-check", tags=["software update"],
             response={202: OfferOut, **REFUSALS, 503: Errors})
def check_for_updates(request):
    """Ask the update server now (the maintenance worker does; read GET /updates after)."""
    row = OnlineUpdate.load()
    if not online.asks(row):
        online.check(row)  # asks nobody: forgets what an earlier check found
        refuse(400, "The online update check is off or has no update server: set it under "
                    "Physical \u2013 Advanced Configuration.")
    try:
        send_task(check_for_update)
    except WorkerUnavailable as problem:
        refuse(503, f"Not checked: the maintenance worker cannot be reached: {problem}")
    record_audit(request.auth, "asked the update server for a new release")
    return Status(202, _offer("Checking the update server\u2026"))


@router.post("/updates/install", url_name="update-install", tags=["software update"],
             response={202: UpdateJobOut, **REFUSALS, 503: Errors})
def install_update_online(request):
    """Download and Install what the update server offers, through the same verification
    and install as the WebUI: a job to poll at /updates/jobs/{id}."""
    job = update_jobs.online_job(request.auth)
    if job is None:
        refuse(400, "Nothing installed: no update is on offer (check first), or the online "
                    "update check is off or has no update server (Physical \u2013 Advanced "
                    "Configuration).")
    try:
        update_jobs.start_install(job, request.auth)
    except WorkerUnavailable as problem:
        refuse(503, f"The maintenance worker cannot be reached: {problem}")
    return Status(202, job)


# -- Restart Services ---------------------------------------------------------------------

class ServiceOut(Schema):
    name: str
    label: str
    running: bool
    pid: int | None
    version: str | None
    configured: bool
    restart_reason: str


class ServicesOut(Schema):
    supervisor: bool
    services: list[ServiceOut]


@router.get("/services", url_name="services", tags=["services"], response=ServicesOut)
def list_services(request):
    """Each service the supervisor runs and its state (`supervisor` false: none answers)."""
    state = supervisor_state()
    return {"supervisor": state is not None,
            "services": [vars(row) for row in restarts.service_rows(state)]}


@router.post("/services/{name}/restart", url_name="service-restart", tags=["services"],
             response={202: dict, **REFUSALS, 503: Errors})
def restart_service(request, name: str):
    """Restart the service; `{"action": "stop"}` or `"start"` in the body instead."""
    action = json_body(request).get("action", "restart")
    try:
        restarts.request_restart([name], request.auth, action)
    except ValueError as unknown:
        refuse(404 if str(unknown).startswith("no service") else 400, f"{unknown}.")
    except WorkerUnavailable as problem:
        refuse(503, f"Nothing was {restarts.ACTIONS[action]}: {problem}")
    return Status(202, {"requested": action, "service": name})

