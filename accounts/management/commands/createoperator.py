"""Create a platform operator and print a one-time link to choose a password.

    python manage.py createoperator ops@example.com --name "Olivia Operator"

No password goes through the shell (history, process list): the operator opens the link,
chooses one, signs in and must then set up an authenticator app before any operator page
(accounts.middleware). The link works once and expires after PASSWORD_RESET_TIMEOUT.
``--new-link`` prints a fresh link for an existing operator (a lost link or password).
"""

from __future__ import annotations

from typing import Any

from allauth.account.forms import default_token_generator
from allauth.account.models import EmailAddress
from allauth.account.utils import user_pk_to_url_str
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django_tenants.utils import schema_context

from accounts.models import User
from tenants.services import platform_url

EXISTS_MESSAGE = "{email} already has an account: use --new-link to print a new password link."
NOT_AN_OPERATOR_MESSAGE = "{email} is not an operator."


def password_link(user: User) -> str:
    path = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": default_token_generator.make_token(user)},
    )
    return platform_url().rstrip("/") + path


class Command(BaseCommand):
    help = "Create a platform operator (public schema) and print a link to set the password."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--name", default="", help="the operator's full name")
        parser.add_argument("--new-link", action="store_true", help="a new link for an existing operator")

    def handle(self, *args: Any, **options: Any) -> None:
        email = str(options["email"]).strip().lower()
        try:
            validate_email(email)
        except ValidationError as error:
            raise CommandError(f"{email!r} is not an email address.") from error
        with schema_context("public"), transaction.atomic():
            user = User.objects.filter(email=email).first()
            if user is not None and not options["new_link"]:
                raise CommandError(EXISTS_MESSAGE.format(email=email))
            if user is not None and not user.is_operator:
                raise CommandError(NOT_AN_OPERATOR_MESSAGE.format(email=email))
            if user is None:
                if options["new_link"]:
                    raise CommandError(f"No operator {email}.")
                user = User.objects.create_user(
                    email, None, full_name=options["name"], is_operator=True, is_staff=True
                )
                EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
            link = password_link(user)
        days = settings.PASSWORD_RESET_TIMEOUT // 86400
        self.stdout.write(
            f"Operator {email}: choose a password at\n  {link}\n"
            f"(works once, for {days} days). At first sign-in the operator sets up an "
            "authenticator app (second factor).\n"
        )
