"""The one state every ``ictq`` command reaches, the same way: ``@pass_state``.

The root group makes it from ``--env-file``; the settings are read from that file once, on
first use, so ``ictq --help`` and a usage error never need a ``.env``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from ictq import display
from ictq.client import Client
from ictq.config import Settings, load_settings
from ictq.db import Storage, open_storage
from ictq.display import NO_SECRETS, Masker, printable


class State:
    """The ``.env`` a command reads, its settings (loaded once) and what follows from them."""

    def __init__(self, env_file: str | None = None) -> None:
        self.env_file = env_file
        self._settings: Settings | None = None
        self._masker: Masker = NO_SECRETS

    @property
    def settings(self) -> Settings:
        """The application's settings, read from :attr:`env_file` on first use."""
        if self._settings is None:
            self._settings = load_settings(self.env_file)
            self._masker = Masker(self._settings.secrets)
            display.use(self._masker)
        return self._settings

    def open_storage(self) -> Storage:
        """A new storage for the configured database; the caller closes it."""
        return open_storage(self.settings)

    @contextmanager
    def storage(self) -> Iterator[Storage]:
        """A storage for the configured database, closed on the way out."""
        storage = self.open_storage()
        try:
            yield storage
        finally:
            storage.close()

    @contextmanager
    def client(self) -> Iterator[Client]:
        """A :class:`~ictq.client.Client` of the configured queue, closed on the way out."""
        client = Client(self.settings)
        try:
            yield client
        finally:
            client.close()

    @property
    def masker(self) -> Masker:
        """The masking function of the settings (read now if they were not yet)."""
        _ = self.settings
        return self._masker

    def mask(self, text: str) -> str:
        """``text`` with every secret of the settings read so far masked (in every form: see
        :class:`ictq.display.Masker`); every command's output and error line pass here."""
        return self._masker(text)

    def one_line(self, text: str) -> str:
        """``text`` on one line (for an error or a status line), secrets masked."""
        return printable(" ".join(self.mask(text).split()))


pass_state = click.make_pass_decorator(State)
