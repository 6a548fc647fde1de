"""What the window remembers between runs (QSettings): database, input device, view."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSettings

__all__ = ["Settings", "open_settings"]


def open_settings() -> QSettings:
    """The user's settings file (INI format, per user)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "companion", "companion")


@dataclass
class Settings:
    """Typed access to the keys the GUI stores.

    Parameters
    ----------
    store : QSettings
    """

    store: QSettings

    def _get(self, key: str, default, kind):
        value = self.store.value(key, default)
        try:
            if kind is bool and isinstance(value, str):
                return value.lower() in ("1", "true", "yes")
            return kind(value)
        except (TypeError, ValueError):
            return default

    @property
    def db(self) -> str:
        return self._get("library/db", "", str)

    @db.setter
    def db(self, value: str) -> None:
        self.store.setValue("library/db", str(value))

    @property
    def last_piece(self) -> str:
        return self._get("library/last_piece", "", str)

    @last_piece.setter
    def last_piece(self, value: str) -> None:
        self.store.setValue("library/last_piece", str(value))

    @property
    def input_device(self) -> str:
        """Name of the audio input device; empty = the default device."""
        return self._get("input/device", "", str)

    @input_device.setter
    def input_device(self, value: str) -> None:
        self.store.setValue("input/device", str(value))

    @property
    def pages_per_view(self) -> int:
        return min(max(self._get("view/pages_per_view", 2, int), 1), 2)

    @pages_per_view.setter
    def pages_per_view(self, value: int) -> None:
        self.store.setValue("view/pages_per_view", int(value))

    @property
    def zoom(self) -> float:
        return min(max(self._get("view/zoom", 38.0, float), 15.0), 120.0)

    @zoom.setter
    def zoom(self, value: float) -> None:
        self.store.setValue("view/zoom", float(value))

    @property
    def lead_systems(self) -> int:
        return min(max(self._get("view/lead_systems", 1, int), 0), 4)

    @lead_systems.setter
    def lead_systems(self, value: int) -> None:
        self.store.setValue("view/lead_systems", int(value))

    def sync(self) -> None:
        self.store.sync()
