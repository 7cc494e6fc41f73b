from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.shortcuts import redirect, render

from appliance.services import record_audit


def passwords(request):
    """Maintenance > Passwords: the current password is required; weak ones are refused by
    the validators in settings (length 10+, not common, not all digits, not like the name)."""
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)  # this browser stays logged in
        record_audit(user, "changed the password")
        messages.success(request, f"The password of {user.get_username()} is changed.")
        return redirect("maintenance:passwords")
    return render(request, "maintenance/passwords.html", {"page_title": "Passwords",
                                                          "form": form})
