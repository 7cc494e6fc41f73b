"""The forms of Maintenance › Passwords' users: Django's own user and password forms (the name
rules, the password validators of settings.AUTH_PASSWORD_VALIDATORS) plus the role."""

from django import forms
from django.conf import settings
from django.contrib.auth.forms import SetPasswordForm, UserCreationForm

from core.models import UserRole

ROLE_HELP = ("config: everything. maint: Halt/Drain/Online, Restart Services, backups (not "
             "restore), software updates; reads everything. report: reads System Overview, "
             "View Configuration, Reports and Logs.")


def role_field(**kwargs):
    return forms.ChoiceField(label="Role", choices=UserRole.Role.choices, help_text=ROLE_HELP,
                             **kwargs)


class AddUserForm(UserCreationForm):
    """Username, password twice, role."""

    role = role_field(initial=UserRole.Role.REPORT)

    class Meta(UserCreationForm.Meta):
        fields = ("username",)


class RoleForm(forms.Form):
    """A user's role; `loadbalancer`'s is shown, disabled (and refused by the action)."""

    role = role_field()

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        if user.get_username() == settings.APPLIANCE_USER:
            self.fields["role"].disabled = True
            self.fields["role"].help_text = (f"The {settings.APPLIANCE_USER} user always has "
                                             "the config role.")


class ResetPasswordForm(SetPasswordForm):
    """A new password, twice, checked by the password validators (against this user's name
    too)."""
