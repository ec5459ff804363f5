from django import forms

from analysis.agent.models import model_choices


class QuestionForm(forms.Form):
    question = forms.CharField(max_length=10_000, strip=True, error_messages={"required": "Type a question first."})


class SessionForm(forms.Form):
    # Optional: an untitled session is named after its first question (analysis.services.run_start).
    title = forms.CharField(max_length=200, strip=True, required=False)
    model = forms.CharField(max_length=200, required=False)

    def clean_model(self) -> str:
        model = self.cleaned_data.get("model", "")
        if model and model not in {c.key for c in model_choices()}:
            raise forms.ValidationError("Choose one of the available models.")
        return model
