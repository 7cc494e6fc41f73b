"""The WebUI's forms as a browser submits them, for tests that edit through the same rules."""

from django.forms.models import model_to_dict

from clusters.forms import RealServerForm, VirtualServiceForm
from clusters.models import RealServer, VirtualService


def submitted_form(form_class, instance, changes, **kwargs):
    """`form_class` as the WebUI submits it: the stored fields of `instance`, with `changes`;
    valid."""
    data = model_to_dict(instance, fields=form_class.Meta.fields)
    data.update(changes)
    form = form_class({k: "" if v is None else v for k, v in data.items()}, instance=instance,
                      **kwargs)
    assert form.is_valid(), form.errors
    return form


def service_form(service, changes):
    return submitted_form(VirtualServiceForm, VirtualService.objects.get(pk=service.pk), changes)


def server_form(server, changes):
    server = RealServer.objects.select_related("service").get(pk=server.pk)
    return submitted_form(RealServerForm, server, changes, service=server.service)
