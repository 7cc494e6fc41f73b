"""View Configuration > Appliance Configuration: the whole configuration as a backup would
write it (maintenance.backup.export_xml), shown escaped, and downloadable."""

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from core.audit import record_audit
from maintenance.backup import export_xml


def appliance_configuration(request):
    data = export_xml()
    if "download" in request.GET:
        response = HttpResponse(data, content_type="application/xml")
        name = timezone.now().strftime("lbadmin-configuration-%Y%m%d-%H%M%S.xml")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        record_audit(request.user, "downloaded the appliance configuration")
        return response
    return render(request, "reports/appliance_configuration.html", {
        "page_title": "Appliance Configuration", "xml": data.decode("utf-8", errors="replace"),
    })
