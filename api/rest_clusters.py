"""REST resources of Cluster Configuration: virtual services, real servers (and System
Overview's Drain/Halt/Online), floating IPs, health-check scripts. Each write binds the JSON
to the WebUI's form and calls the WebUI's action (clusters.services, healthchecks.services)."""

from typing import Literal

from django.db.models import ProtectedError
from django.shortcuts import get_object_or_404
from ninja import ModelSchema, Router, Schema, Status

from clusters import services
from clusters.forms import FloatingIPForm, RealServerForm, VirtualServiceForm
from clusters.models import FloatingIP, RealServer, VirtualService
from healthchecks import services as check_services
from healthchecks.forms import HealthCheckScriptForm
from healthchecks.models import HealthCheckScript
from network.forms import connected_networks
from network.models import NetworkConfiguration

from .rest_base import (
    bind,
    body_schema,
    json_body,
    refuse,
    refuse_on_a_secondary,
    valid,
)

router = Router()


class VirtualServiceOut(ModelSchema):
    class Meta:
        model = VirtualService
        fields = "__all__"


class RealServerOut(ModelSchema):
    service_label: str

    class Meta:
        model = RealServer
        exclude = ["changed_generation"]

    @staticmethod
    def resolve_service_label(server):
        return server.service.label


class FloatingIPOut(ModelSchema):
    class Meta:
        model = FloatingIP
        fields = "__all__"


class ScriptOut(ModelSchema):
    class Meta:
        model = HealthCheckScript
        fields = "__all__"


class Errors(Schema):
    errors: dict[str, list[str]]


REFUSALS = {400: Errors, 403: Errors, 404: Errors}
TAGS_VS, TAGS_RS = ["virtual services"], ["real servers"]
TAGS_FIP, TAGS_SCRIPTS = ["floating IPs"], ["health-check scripts"]


# -- Layer 4 – Virtual Services ----------------------------------------------------------

@router.get("/virtual-services", url_name="virtual-services", tags=TAGS_VS,
            response=list[VirtualServiceOut])
def list_virtual_services(request, label: str = ""):
    """Every virtual service (or the one with `label`)."""
    found = VirtualService.objects.all()
    return found.filter(label=label) if label else found


@router.post("/virtual-services", url_name="virtual-services", tags=TAGS_VS,
             response={201: VirtualServiceOut, **REFUSALS},
             openapi_extra=body_schema(VirtualServiceForm))
def create_virtual_service(request):
    """Add a new Virtual Service: the fields of the WebUI's form; those left out take its
    defaults (TCP, NAT, Weighted Least-Connection, checks every 30 s, 10 failures)."""
    refuse_on_a_secondary(request)
    form = valid(bind(VirtualServiceForm, json_body(request), instance=VirtualService()))
    return Status(201, services.do_save_service(form.instance, request.auth))


@router.get("/virtual-services/{int:service_id}", url_name="virtual-service", tags=TAGS_VS,
            response={200: VirtualServiceOut, 404: Errors})
def get_virtual_service(request, service_id: int):
    return get_object_or_404(VirtualService, pk=service_id)


@router.patch("/virtual-services/{int:service_id}", url_name="virtual-service", tags=TAGS_VS,
              response={200: VirtualServiceOut, **REFUSALS},
              openapi_extra=body_schema(VirtualServiceForm, partial=True))
def update_virtual_service(request, service_id: int):
    """Modify: only the fields named change; the whole is validated as the WebUI's form."""
    service = get_object_or_404(VirtualService, pk=service_id)
    refuse_on_a_secondary(request)
    form = valid(bind(VirtualServiceForm, json_body(request), instance=service))
    return services.do_save_service(form.instance, request.auth)


@router.delete("/virtual-services/{int:service_id}", url_name="virtual-service",
               tags=TAGS_VS, response={204: None, 403: Errors, 404: Errors})
def delete_virtual_service(request, service_id: int):
    """Its real servers are deleted with it and its VIP stops answering."""
    service = get_object_or_404(VirtualService, pk=service_id)
    refuse_on_a_secondary(request)
    services.do_delete_service(service, request.auth)
    return Status(204, None)


# -- Layer 4 – Real Servers ---------------------------------------------------------------

def _servers():
    return RealServer.objects.select_related("service")


@router.get("/virtual-services/{int:service_id}/real-servers",
            url_name="service-real-servers", tags=TAGS_RS,
            response={200: list[RealServerOut], 404: Errors})
def list_service_real_servers(request, service_id: int):
    service = get_object_or_404(VirtualService, pk=service_id)
    return _servers().filter(service=service)


@router.post("/virtual-services/{int:service_id}/real-servers",
             url_name="service-real-servers", tags=TAGS_RS,
             response={201: RealServerOut, **REFUSALS},
             openapi_extra=body_schema(RealServerForm))
def create_real_server(request, service_id: int):
    """Add a new Real Server to the virtual service (port blank or 0: the client's port)."""
    service = get_object_or_404(VirtualService, pk=service_id)
    refuse_on_a_secondary(request)
    server = RealServer(service=service)
    form = valid(bind(RealServerForm, json_body(request), instance=server, service=service))
    return Status(201, services.do_save_real_server(form.instance, request.auth))


@router.get("/real-servers", url_name="real-servers", tags=TAGS_RS,
            response=list[RealServerOut])
def list_real_servers(request, label: str = ""):
    """Every real server of every virtual service (or those with `label`)."""
    found = _servers()
    return found.filter(label=label) if label else found


@router.get("/real-servers/{int:server_id}", url_name="real-server", tags=TAGS_RS,
            response={200: RealServerOut, 404: Errors})
def get_real_server(request, server_id: int):
    return get_object_or_404(_servers(), pk=server_id)


@router.patch("/real-servers/{int:server_id}", url_name="real-server", tags=TAGS_RS,
              response={200: RealServerOut, **REFUSALS},
              openapi_extra=body_schema(RealServerForm, partial=True))
def update_real_server(request, server_id: int):
    server = get_object_or_404(_servers(), pk=server_id)
    refuse_on_a_secondary(request)
    form = valid(bind(RealServerForm, json_body(request), instance=server,
                      service=server.service))
    return services.do_save_real_server(form.instance, request.auth)


@router.delete("/real-servers/{int:server_id}", url_name="real-server", tags=TAGS_RS,
               response={204: None, 403: Errors, 404: Errors})
def delete_real_server(request, server_id: int):
    """It gets no new connections; open ones are left to finish."""
    server = get_object_or_404(_servers(), pk=server_id)
    refuse_on_a_secondary(request)
    services.do_delete_real_server(server, request.auth)
    return Status(204, None)


class StateOut(Schema):
    id: int
    state: str
    generation: int


@router.post("/real-servers/{int:server_id}/{action}", url_name="real-server-state",
             tags=TAGS_RS, response={200: StateOut, **REFUSALS})
def set_real_server_state(request, server_id: int, action: Literal["drain", "halt", "online"]):
    """System Overview's buttons (the guide's 7.2): `drain` takes no new connections and
    keeps the open ones, `halt` takes none and cuts the open ones, `online` takes them again.
    The maint role may do this."""
    server = get_object_or_404(_servers(), pk=server_id)
    refuse_on_a_secondary(request)
    generation = services.do_set_state(server, action, request.auth)
    return {"id": server.pk, "state": server.state, "generation": generation}


# -- Floating IP's ----------------------------------------------------------------------

@router.get("/floating-ips", url_name="floating-ips", tags=TAGS_FIP,
            response=list[FloatingIPOut])
def list_floating_ips(request):
    return FloatingIP.objects.all()


@router.post("/floating-ips", url_name="floating-ips", tags=TAGS_FIP,
             response={201: FloatingIPOut, **REFUSALS},
             openapi_extra=body_schema(FloatingIPForm))
def add_floating_ip(request):
    """The address must lie in a connected subnet of the configured interfaces."""
    refuse_on_a_secondary(request)
    # the configuration's subnets, never the kernel's: the WebUI's page does the same
    networks = connected_networks([], NetworkConfiguration.load().interfaces)
    form = valid(bind(FloatingIPForm, json_body(request), networks=networks))
    added = services.do_add_floating_ip(form.cleaned_data["address"], request.auth)
    return Status(201, added)


@router.delete("/floating-ips/{int:floating_id}", url_name="floating-ip", tags=TAGS_FIP,
               response={204: None, 403: Errors, 404: Errors})
def remove_floating_ip(request, floating_id: int):
    floating = get_object_or_404(FloatingIP, pk=floating_id)
    refuse_on_a_secondary(request)
    services.do_remove_floating_ip(floating, request.auth)
    return Status(204, None)


# -- Health Check Scripts -----------------------------------------------------------------

@router.get("/health-check-scripts", url_name="health-check-scripts", tags=TAGS_SCRIPTS,
            response=list[ScriptOut])
def list_scripts(request):
    return HealthCheckScript.objects.all()


@router.post("/health-check-scripts", url_name="health-check-scripts", tags=TAGS_SCRIPTS,
             response={201: ScriptOut, **REFUSALS},
             openapi_extra=body_schema(HealthCheckScriptForm))
def create_script(request):
    """An external check script: called with VIP, virtual port, real server IP, real server
    port; exit 0 = healthy. Use it from a virtual service's `check_script` (its id)."""
    refuse_on_a_secondary(request)
    form = valid(bind(HealthCheckScriptForm, json_body(request), instance=HealthCheckScript()))
    return Status(201, check_services.do_save_script(form.instance, request.auth))


@router.get("/health-check-scripts/{int:script_id}", url_name="health-check-script",
            tags=TAGS_SCRIPTS, response={200: ScriptOut, 404: Errors})
def get_script(request, script_id: int):
    return get_object_or_404(HealthCheckScript, pk=script_id)


@router.patch("/health-check-scripts/{int:script_id}", url_name="health-check-script",
              tags=TAGS_SCRIPTS, response={200: ScriptOut, **REFUSALS},
              openapi_extra=body_schema(HealthCheckScriptForm, partial=True))
def update_script(request, script_id: int):
    script = get_object_or_404(HealthCheckScript, pk=script_id)
    refuse_on_a_secondary(request)
    form = valid(bind(HealthCheckScriptForm, json_body(request), instance=script))
    return check_services.do_save_script(form.instance, request.auth)


@router.delete("/health-check-scripts/{int:script_id}", url_name="health-check-script",
               tags=TAGS_SCRIPTS, response={204: None, **REFUSALS})
def delete_script(request, script_id: int):
    script = get_object_or_404(HealthCheckScript, pk=script_id)
    refuse_on_a_secondary(request)
    try:
        check_services.do_delete_script(script, request.auth)
    except ProtectedError:
        users = sorted(script.services.values_list("label", flat=True))
        named = ", ".join(f"\u201c{label}\u201d" for label in users)
        refuse(400, f"{script.name} cannot be deleted: it is used by the virtual "
                    f"service{'s' if len(users) > 1 else ''} {named}. Choose another check "
                    "there first.")
    return Status(204, None)
