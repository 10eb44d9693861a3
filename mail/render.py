"""Render a notification into an email: subject, plain text and HTML, from Jinja2 templates.

Each notification kind has three templates, ``<kind>.subject.txt``, ``<kind>.txt`` and
``<kind>.html``. The package's own templates are the defaults; a shop points
``LOYALTY_MAIL_TEMPLATES_DIR`` at a folder of its own, and any template found there replaces the
package's one of the same name (the others keep working). HTML is autoescaped, so text a
customer provided (a first name of ``<script>``) arrives as text, never as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from mail.context import format_date

TEMPLATE_PACKAGE = "mail"
TEMPLATE_FOLDER = "templates"
PARTS = ("subject.txt", "txt", "html")


class TemplateMissingError(LookupError):
    """No template exists for a notification kind; the message names the files looked for."""


class RenderError(ValueError):
    """A template failed to render; the message names the template and the error."""


@dataclass(frozen=True)
class RenderedEmail:
    """What a notification becomes: one subject line and two alternative bodies."""

    subject: str
    text: str
    html: str


class MailRenderer:
    """Jinja2 environment over the override folder (if any) and the package's templates."""

    def __init__(self, override_dir: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if override_dir is not None:
            if not override_dir.is_dir():
                raise TemplateMissingError(
                    f"LOYALTY_MAIL_TEMPLATES_DIR={override_dir} is not a folder; create it or "
                    "unset the variable to use the built-in templates"
                )
            loaders.append(jinja2.FileSystemLoader(override_dir))
        loaders.append(jinja2.PackageLoader(TEMPLATE_PACKAGE, TEMPLATE_FOLDER))
        self.environment = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            # Only the HTML parts are markup; escaping the text parts would show "&lt;" to readers.
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
            undefined=jinja2.ChainableUndefined,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.environment.filters["date"] = format_date

    def kinds(self) -> set[str]:
        """Return the notification kinds that have all three templates."""
        names = set(self.environment.list_templates())
        found = {
            name.removesuffix(".subject.txt") for name in names if name.endswith(".subject.txt")
        }
        return {kind for kind in found if all(f"{kind}.{part}" in names for part in PARTS)}

    def _template(self, kind: str, part: str) -> jinja2.Template:
        name = f"{kind}.{part}"
        try:
            return self.environment.get_template(name)
        except jinja2.TemplateNotFound:
            raise TemplateMissingError(
                f"no template {name!r} for notification kind {kind!r}; add it to "
                "LOYALTY_MAIL_TEMPLATES_DIR or use a kind the built-in templates know: "
                f"{', '.join(sorted(self.kinds()))}"
            ) from None

    def render(self, kind: str, context: dict[str, Any]) -> RenderedEmail:
        """Render the three parts of a notification kind with this context."""
        parts = []
        for part in PARTS:
            template = self._template(kind, part)
            try:
                parts.append(template.render(context))
            except jinja2.TemplateError as exc:
                raise RenderError(f"template {template.name!r} failed: {exc}") from exc
        # A subject is one header line: collapse whatever whitespace a template left in it.
        subject = " ".join(parts[0].split())
        if not subject:
            raise RenderError(f"template '{kind}.subject.txt' rendered an empty subject")
        return RenderedEmail(subject=subject, text=parts[1].strip() + "\n", html=parts[2])
