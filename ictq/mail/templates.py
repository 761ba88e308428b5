"""Rendering notifications with Jinja2.

A notification ``NAME`` in locale ``LOCALE`` is three templates: ``LOCALE/NAME.subject.txt``
(one line), ``LOCALE/NAME.txt`` (the plain-text part) and ``LOCALE/NAME.html`` (the HTML part,
autoescaped). Directories added with :func:`add_template_dir` are searched before the built-in
ones, so an application can add notifications and also reword the built-in ones.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ictq.errors import RenderError

if TYPE_CHECKING:
    import jinja2

_extra_dirs: list[Path] = []

__all__ = ["RenderError", "Rendered", "add_template_dir", "render"]


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def add_template_dir(path: str | Path) -> None:
    """Search ``path`` (holding ``LOCALE/NAME.*`` files) before the built-in templates."""
    folder = Path(path).resolve()
    if not folder.is_dir():
        raise RenderError(f"template directory {folder} does not exist")
    if folder not in _extra_dirs:
        _extra_dirs.insert(0, folder)


def render(name: str, locale: str, context: Mapping[str, Any]) -> Rendered:
    """The subject, text and HTML of notification ``name`` in ``locale``."""
    import jinja2  # here, not at import: every worker imports this module, few of them send mail

    env = _environment(tuple(_extra_dirs))
    try:
        subject = env.get_template(f"{locale}/{name}.subject.txt").render(context)
        text = env.get_template(f"{locale}/{name}.txt").render(context)
        html = env.get_template(f"{locale}/{name}.html").render(context)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"no template {exc.name} (is {locale!r} a supported locale?)") from None
    except jinja2.TemplateError as exc:
        raise RenderError(f"template error in {name} ({locale}): {exc}") from None
    subject = " ".join(subject.split())
    if not subject:
        raise RenderError(f"the subject of {name} ({locale}) is empty")
    return Rendered(subject, text, html)


@functools.cache
def _environment(extra_dirs: tuple[Path, ...]) -> jinja2.Environment:
    import jinja2

    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(folder)) for folder in extra_dirs]
    loaders.append(jinja2.PackageLoader("ictq.mail", "templates"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
