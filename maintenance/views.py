import re
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core import roles
from core.audit import record_audit, record_change
from core.runtime import supervisor_state
from core.signals import users_changed
from core.version import __version__
from core.workers import WorkerUnavailable, send_task

from . import backup, online, restarts, update_jobs, updates, users
from .forms import BackupForm, OfflineUpdateForm, OnlineUpdateForm, RestoreForm, WebUISettingsForm
from .models import OnlineUpdate, Revision, UpdateJob, WebUISettings
from .revisions import KEEP as REVISIONS_KEPT
from .revisions import diff as revisions_diff
from .tasks import check_for_update

REVISION_NUMBER = re.compile(r"[0-9]{1,18}")
# When this browser sent an online update check to the maintenance worker (time.time()): its
# page says "checking…" and polls until the worker has stored the answer.
CHECK_SENT = "online_update_check_sent"
CHECK_WAIT = 60  # seconds the page waits for the worker before saying it did not answer


def passwords(request):
    """Maintenance > Passwords: every user changes their own password here (the current one
    is required; weak ones are refused by the validators in settings: length 10+, not common,
    not all digits, not like the name); a `config` user also sees every user with their role
    and adds, edits and removes them (maintenance.users_views)."""
    form = PasswordChangeForm(request.user, request.POST or None)
    valid = request.method == "POST" and form.is_valid()
    if form.has_error("old_password", "password_incorrect"):
        # counted and logged like a refused login (appliance.login throttles both)
        user_login_failed.send(sender=__name__, request=request, credentials={
            "username": request.user.get_username(), "page": "Maintenance › Passwords"})
    if valid:
        user = form.save()
        update_session_auth_hash(request, user)  # this browser stays logged in
        record_audit(user, "changed the password")
        # a Primary sends the new hash to its Secondary now (on commit)
        transaction.on_commit(lambda: users_changed.send(sender=None, user=user.username),
                              robust=True)
        messages.success(request, f"The password of {user.get_username()} is changed.")
        return redirect("maintenance:passwords")
    return render(request, "maintenance/passwords.html", {
        "page_title": "Passwords", "form": form, "appliance_user": settings.APPLIANCE_USER,
        "users": users.users_with_roles() if roles.allows(
            roles.role_of(request.user), "maintenance:user-add", "GET") else None})


def backup_restore(request):
    """Maintenance > Backup & Restore."""
    backup_form = BackupForm(request.POST if "download" in request.POST else None)
    restore_form = RestoreForm(request.POST if "restore" in request.POST else None,
                               request.FILES if "restore" in request.POST else None)
    if "download" in request.POST and backup_form.is_valid():
        data = backup.export_xml()
        passphrase = backup_form.cleaned_data["passphrase"]
        name = timezone.now().strftime("lbadmin-backup-%Y%m%d-%H%M%S.xml")
        if passphrase:
            data, name = backup.encrypt(data, passphrase), name + ".enc"
        record_audit(request.user, f"downloaded a backup{' (encrypted)' if passphrase else ''}")
        response = HttpResponse(data, content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    if "restore" in request.POST and restore_form.is_valid():
        upload = restore_form.cleaned_data["backup"]
        try:
            if upload.size > backup.MAX_BYTES:
                raise backup.BackupError("The file is larger than 10 MiB.")
            data = backup.decrypt(upload.read(), restore_form.cleaned_data["passphrase"])
            parsed = backup.parse(data)
            backup.restore(parsed, request.user)
        except backup.BackupError as refused:
            restore_form.add_error("backup", f"Not restored: {refused} Nothing was changed.")
        else:
            converted = (f" (converted from schema {parsed['converted_from']}; this appliance's "
                         "online update settings were kept)") if parsed["converted_from"] else ""
            messages.success(request, f"Backup restored{converted}; the data plane and the "
                                      "network are being applied.")
            return redirect("maintenance:backup-restore")
    local = sorted(settings.BACKUP_DIR.glob("lbadmin-backup-*.xml"), reverse=True)
    return render(request, "maintenance/backup_restore.html", {
        "page_title": "Backup & Restore", "backup_form": backup_form,
        "restore_form": restore_form, "local_backups": [p.name for p in local],
        "kept": settings.BACKUPS_KEPT})


def history(request):
    """Every saved change as a revision: who, when, what; a diff of any two; roll back."""
    revisions = Revision.objects.only("id", "at", "user", "action")[:200]
    older, newer = (_revision(request, request.GET.get(key, "")) for key in ("a", "b"))
    difference = revisions_diff(older, newer) if older and newer else ""
    return render(request, "maintenance/history.html", {
        "page_title": "Backup & Restore", "revisions": revisions, "older": older,
        "newer": newer, "difference": difference})


def _revision(request, number):
    """The revision a query parameter names, or None (with a message if it names none)."""
    if not number:
        return None
    if not REVISION_NUMBER.fullmatch(number):
        messages.error(request, f"“{number[:40]}” is not a revision number: choose two revisions "
                                "in the table.")
        return None
    revision = Revision.objects.filter(pk=int(number)).first()
    if revision is None:
        messages.error(request, f"There is no revision {number} (the newest "
                                f"{REVISIONS_KEPT} are kept).")
    return revision


@require_POST
def roll_back(request, pk):
    revision = get_object_or_404(Revision, pk=pk)
    try:
        backup.restore(backup.parse(revision.xml.encode()), request.user)
    except backup.BackupError as refused:
        messages.error(request, f"Revision {pk} cannot be restored: {refused} Nothing was "
                                "changed.")
    else:
        messages.success(request, f"Rolled back to revision {pk}; it is being applied.")
    return redirect("maintenance:history")


def software_update(request):
    """Maintenance > Software Update: Online Update (what the update server offers) and
    Offline Update (Upload and Install: verified completely, then installed)."""
    form = OfflineUpdateForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        files = form.cleaned_data
        try:
            if files["archive"].size > updates.MAX_ARCHIVE:
                raise updates.UpdateError("The archive is larger than 200 MiB.")
            verified = updates.verify(
                files["archive"].read(), files["checksum"].read(4096),
                files["signature"].read(4096),
                updates.trusted_keys(settings.DATA_DIR / "update-keys"), __version__)
        except updates.UpdateError as refused:
            form.add_error("archive", f"Refused: {refused} Nothing was changed.")
        else:
            files["archive"].seek(0)
            stored = settings.UPLOAD_DIR / f"lbadmin-{verified.version}.tar.gz"
            with open(stored, "wb") as handle:
                for chunk in files["archive"].chunks():
                    handle.write(chunk)
            job = UpdateJob.objects.create(
                user=request.user.get_username(), from_version=__version__,
                to_version=verified.version, archive=str(stored),
                log=f"{timezone.now():%H:%M:%S} verified {files['archive'].name}: version "
                    f"{verified.version}, signed by a trusted key, {len(verified.files)} files "
                    f"match its manifest, updates from {verified.min_from} or newer\n"
                    f"Release notes: {verified.notes or '(none)'}\n")
            return _install(request, job)
    poll, check = _online_check(request)
    if poll:
        return poll
    return render(request, "maintenance/software_update.html", check | {
        "page_title": "Software Update", "form": form, "running": __version__,
        "offered": online.offered(), "history": UpdateJob.objects.all()[:20]})


def _online_check(request):
    """For a page showing the online update check: (the response to its htmx poll, or None;
    the check's context: the row, its state, CHECK_WAIT)."""
    row = OnlineUpdate.load()
    check = {"online": row, "check_state": _check_state(request, row), "check_wait": CHECK_WAIT}
    return (_check_poll(request, check) if request.htmx and request.method == "GET" else None,
            check)


def _send_check(request):
    """Send the online update check to the maintenance worker (it asks the server; a web
    request never does); None, or why it cannot be sent, in words."""
    try:
        send_task(check_for_update)
    except WorkerUnavailable as problem:
        request.session.pop(CHECK_SENT, None)
        return f"the maintenance worker cannot be reached: {problem}"
    request.session[CHECK_SENT] = time.time()
    return None


def _check_state(request, row):
    """"checking" while the check this browser sent has not stored its answer, "stalled" once
    the worker has not done so in CHECK_WAIT seconds (said once), else None."""
    sent = request.session.get(CHECK_SENT)
    if sent is None:
        return None
    if not online.asks(row) or (row.checked_at and row.checked_at.timestamp() >= sent):
        del request.session[CHECK_SENT]
        return None
    if time.time() - sent > CHECK_WAIT:
        del request.session[CHECK_SENT]
        return "stalled"
    return "checking"


def _check_poll(request, check):
    """The htmx poll of a page showing "checking…": the check's line, with 286 (polling
    stops) once the answer is stored, and a reload when the offer (the banner on every page)
    changed."""
    response = render(request, "maintenance/online_check.html", check)
    if check["check_state"] != "checking":
        response.status_code = 286
        offered = online.offered()
        if (offered.available_version if offered else "") != request.GET.get("shown", ""):
            response["HX-Refresh"] = "true"
    return response


def _install(request, job):
    """Start installing `job` on the maintenance worker and show its progress page."""
    try:
        update_jobs.start_install(job, request.user)
    except WorkerUnavailable as problem:
        messages.error(request, f"The maintenance worker cannot be reached: {problem}")
        return redirect("maintenance:software-update")
    return redirect("maintenance:update-job", pk=job.pk)


@require_POST
def check_online(request):
    """Online Update › Check now (the daily check does the same): sent to the maintenance
    worker; the page says "checking…" until the answer is stored."""
    row = OnlineUpdate.load()
    if not online.asks(row):
        online.check(row)  # asks nobody: forgets what an earlier check found
        messages.error(request, "The online update check is off or has no update server: "
                                "set it under Physical – Advanced Configuration.")
        return redirect("maintenance:software-update")
    problem = _send_check(request)
    if problem:
        messages.error(request, f"Not checked: {problem}")
    else:
        messages.success(request, "Checking the update server…")
    return redirect("maintenance:software-update")


@require_POST
def install_online(request):
    """Online Update › Download and Install: through the same verification and install as an
    uploaded archive (the worker downloads, verifies, stages, checks, hands over)."""
    job = update_jobs.online_job(request.user)
    if job is None:
        if online.asks(OnlineUpdate.load()):
            messages.error(request, "Nothing installed: no newer release is on offer; "
                                    "check again.")
        else:
            messages.error(request, "Nothing installed: no update is on offer, the online "
                                    "update check is off or has no update server (Physical – "
                                    "Advanced Configuration).")
        return redirect("maintenance:software-update")
    return _install(request, job)


def update_job(request, pk):
    """The job's progress bar and log; the htmx poll stops (286) once it has settled."""
    job = get_object_or_404(UpdateJob, pk=pk)
    template = "maintenance/update_job_status.html" if request.htmx else \
        "maintenance/update_job.html"
    response = render(request, template, {"page_title": "Software Update", "job": job})
    if request.htmx and job.settled:
        response.status_code = 286
    return response


def restart_services(request):
    """Maintenance > Restart Services: each service's state from the supervisor, and a
    restart button each; the table refreshes itself (htmx) while restarts happen."""
    state = supervisor_state()
    context = {"page_title": "Restart Services", "state": state,
               "rows": restarts.service_rows(state)}
    if request.htmx:
        return render(request, "maintenance/restart_services_table.html", context)
    return render(request, "maintenance/restart_services.html", context)


@require_POST
def restart_service(request, name):
    """Restart one service, or (name "needed") every service the banner names; with
    action=stop, stop it (it stays down: the supervisor restarts only what exits unasked)."""
    action = request.POST.get("action", "restart")
    if name == "needed":
        names = [row.name for row in restarts.restart_needed(supervisor_state())]
    else:
        names = [name]
    try:
        restarts.request_restart(names, request.user, action)
    except ValueError as unknown:
        messages.error(request, str(unknown))
    except WorkerUnavailable as problem:
        messages.error(request, f"Nothing was {restarts.ACTIONS[action]}: {problem}")
    else:
        if names:
            messages.success(request, f"{action.capitalize()} requested: {', '.join(names)}. "
                                      "The table below shows each one's state.")
    return redirect("maintenance:restart-services")


def advanced_configuration(request):
    """Local Configuration > Physical – Advanced Configuration: the host names the WebUI
    answers to, and the online update check (the page sits in Local Configuration's menu, as
    in the guide; the check is Software Update's). Saving with the check on sends a check to
    the maintenance worker at once; the page says "checking…" until its answer is stored.
    The names the browser uses now must stay allowed (WebUISettingsForm)."""
    form = OnlineUpdateForm(request.POST or None, instance=OnlineUpdate.load())
    webui_form = WebUISettingsForm(request.POST or None, instance=WebUISettings.load(),
                                   request=request)
    if request.method == "POST" and all([form.is_valid(), webui_form.is_valid()]):
        if webui_form.has_changed():
            names = webui_form.save().allowed_hosts
            record_change(request.user, "set the WebUI's allowed host names to "
                                        f"{names or 'its own names only'}")
        was_offered = online.offered()
        saved = form.save()  # switching off or changing the server withdraws the offer
        state = "on" if saved.enabled else "off"
        record_change(request.user, f"set the online update check {state} "
                                    f"({saved.server_url or 'no server'})")
        withdrawn = f" The offer of update {was_offered.available_version} is withdrawn." \
            if was_offered and not online.offered() else ""
        if not online.asks(saved):
            online.check(saved)  # asks nobody: forgets what an earlier check found
            messages.success(request, f"Advanced configuration saved; the offer of update "
                                      f"{was_offered.available_version} is withdrawn."
                             if withdrawn else "Advanced configuration saved.")
        elif problem := _send_check(request):
            messages.error(request, f"Advanced configuration saved.{withdrawn} The update "
                                    f"server was not asked: {problem} The daily check, or "
                                    "Check now, asks it later.")
        else:
            messages.success(request, f"Advanced configuration saved.{withdrawn} Checking "
                                      "the update server…")
        return redirect("local:advanced")
    poll, check = _online_check(request)
    if poll:
        return poll
    return render(request, "maintenance/advanced.html", check | {
        "page_title": "Physical – Advanced Configuration", "form": form, "webui_form": webui_form})
