from django import forms
from django.contrib.auth import get_user_model

from core import roles

from .models import ApiKey


class UserChoice(forms.ModelChoiceField):
    def label_from_instance(self, user):
        return f"{user.get_username()} ({roles.role_of(user)})"


class ApiKeyForm(forms.ModelForm):
    """Local Configuration › API Keys › Create: a name and the user the key acts as."""

    user = UserChoice(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        label="User", empty_label=None,
        help_text="The key acts as this user, with this user's role: config changes "
                  "everything, maint only Halt/Drain/Online, restarts, backups and updates, "
                  "report only reads.")

    class Meta:
        model = ApiKey
        fields = ["name", "user"]
        labels = {"name": "Name"}
        help_texts = {"name": "What the key is for, e.g. ansible or monitoring: the User Log "
                              "names it on every change made with it."}
        error_messages = {"name": {"required": "Enter a name for the key, e.g. ansible."}}

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if ApiKey.objects.filter(name=name, revoked__isnull=True).exists():
            raise forms.ValidationError("An active API key already has this name: choose "
                                        "another, or revoke that one first.")
        return name
