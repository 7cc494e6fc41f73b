"""Maintenance › Passwords' user management (config only: core.roles): add a user, change a
user's role or reset their password, remove a user. The rules are maintenance.users'."""

from django.contrib import messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.shortcuts import get_object_or_404, redirect, render

from core.roles import role_of

from . import users
from .users_forms import AddUserForm, ResetPasswordForm, RoleForm


def user_add(request):
    form = AddUserForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        added = users.do_add_user(request.user, form.cleaned_data["username"],
                                  form.cleaned_data["password1"], form.cleaned_data["role"])
        messages.success(request, f"User {added.get_username()} added with the role "
                                  f"{form.cleaned_data['role']}.")
        return redirect("maintenance:passwords")
    return render(request, "maintenance/user_add.html", {"page_title": "Passwords",
                                                         "form": form})


def user_edit(request, pk):
    """Two forms on one page: the role ("change_role") and a new password ("reset")."""
    user = get_object_or_404(get_user_model(), pk=pk)
    posted = request.POST if request.method == "POST" else None
    role_form = RoleForm(posted if "change_role" in request.POST else None, user=user,
                         initial={"role": role_of(user)})
    password_form = ResetPasswordForm(user, posted if "reset" in request.POST else None)
    if "change_role" in request.POST and role_form.is_valid():
        try:
            users.do_set_role(request.user, user, role_form.cleaned_data["role"])
        except users.UserRefused as refused:
            role_form.add_error("role", f"Not changed: {refused}")
        else:
            messages.success(request, f"The role of {user.get_username()} is "
                                      f"{role_of(user)}.")
            return redirect("maintenance:passwords")
    if "reset" in request.POST and password_form.is_valid():
        users.do_reset_password(request.user, user, password_form.cleaned_data["new_password1"])
        if user.pk == request.user.pk:
            update_session_auth_hash(request, user)  # this browser stays logged in
        messages.success(request, f"The password of {user.get_username()} is changed.")
        return redirect("maintenance:passwords")
    return render(request, "maintenance/user_edit.html", {
        "page_title": "Passwords", "edited": user, "role_form": role_form,
        "password_form": password_form})


def user_remove(request, pk):
    """A confirmation page, then the removal (refused in words by the rules)."""
    user = get_object_or_404(get_user_model(), pk=pk)
    refused = None
    if request.method == "POST":
        try:
            users.do_remove_user(request.user, user)
        except users.UserRefused as problem:
            refused = f"Not removed: {problem}"
        else:
            messages.success(request, f"User {user.get_username()} removed.")
            return redirect("maintenance:passwords")
    return render(request, "maintenance/user_remove.html", {
        "page_title": "Passwords", "removed": user, "removed_role": role_of(user),
        "refused": refused})
