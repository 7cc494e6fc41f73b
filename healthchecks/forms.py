from django import forms

from .models import HealthCheckScript


class HealthCheckScriptForm(forms.ModelForm):
    class Meta:
        model = HealthCheckScript
        fields = ["name", "type", "template", "script"]
        widgets = {"script": forms.Textarea(attrs={"rows": 22, "cols": 100,
                                                   "spellcheck": "false"})}
        help_texts = {
            "template": "Choosing a template fills the script below; Update saves it.",
            "script": "Called with: VIP, virtual port, real server IP, real server port. "
                      "Exit 0 = healthy. Runs as the user nobody, without a shell; start it "
                      "with a #! line.",
        }
        error_messages = {"script": {"required": "The script is empty."}}

    def clean_script(self):
        # Browsers send textareas with CRLF line ends; "#!/bin/bash\r" names no interpreter.
        return self.cleaned_data["script"].replace("\r\n", "\n").replace("\r", "\n")
