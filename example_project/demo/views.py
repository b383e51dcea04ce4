"""Views of the example site: home, sign-up, notifications and the live dashboard."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required, user_passes_test
from django.contrib.auth.forms import UserCreationForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from django_broadcasting import notify_user

from .events import REGISTRATIONS_CHANNEL, UserRegisteredEvent
from .metrics import DASHBOARD_CHANNEL, METRICS_EVENT


def home(request: HttpRequest) -> HttpResponse:
    """List what the demo shows; everyone sees new sign-ups arrive live."""
    return render(request, "demo/home.html", {"registrations_channel": REGISTRATIONS_CHANNEL})


class SignUpForm(UserCreationForm):
    email = forms.EmailField(required=False)

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")


def signup(request: HttpRequest) -> HttpResponse:
    """Create an account, dispatch the ``UserRegisteredEvent``, welcome the user, log in."""
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            # Broadcast once the row is committed (after_commit on the event).
            UserRegisteredEvent(
                user_id=str(user.pk), email=user.email, name=user.get_full_name() or user.get_username()
            ).dispatch()
        login(request, user)
        # The welcome notification reaches the user's other open pages (other tabs, a
        # phone); this browser is between pages right now, so it gets a flash message too.
        notify_user(user.pk, "Welcome!", "Your account has been created successfully", "/dashboard/")
        messages.success(request, "Welcome! Your account has been created successfully.")
        return redirect("home")
    return render(request, "demo/signup.html", {"form": form})


class NotificationForm(forms.Form):
    recipient = forms.ModelChoiceField(queryset=get_user_model().objects.none())
    title = forms.CharField(max_length=100)
    message = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        queryset = get_user_model().objects.filter(is_active=True).order_by("username")
        self.fields["recipient"].queryset = queryset
        self.fields["recipient"].label_from_instance = lambda user: user.get_username()


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    """Send a notification to a chosen user with ``notify_user``; incoming ones appear live."""
    form = NotificationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        recipient = form.cleaned_data["recipient"]
        notify_user(recipient.pk, form.cleaned_data["title"], form.cleaned_data["message"], "/notifications/")
        messages.success(request, f"Notification sent to {recipient.get_username()}.")
        return redirect("notifications")
    return render(request, "demo/notifications.html", {"form": form})


def _is_staff(user) -> bool:
    return user.is_active and user.is_staff


@user_passes_test(_is_staff)
def dashboard(request: HttpRequest) -> HttpResponse:
    """The live dashboard (staff only: ``admin.*`` channels need the ``admin`` role)."""
    return render(request, "demo/dashboard.html", {"channel": DASHBOARD_CHANNEL, "event": METRICS_EVENT})
