"""The key bar: every active key on one line, repainted (not rebuilt) when the bindings change; click a key to press it."""

from __future__ import annotations

from collections import defaultdict
from itertools import groupby

from rich.cells import cell_len
from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget


class KeyBar(Widget):
    """Like Textual's Footer, drawn as one line of text: cheap to update on every focus or screen change."""

    COMPONENT_CLASSES = {"keybar--key", "keybar--key-disabled", "keybar--description", "keybar--description-disabled"}

    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-description-foreground;
        & > .keybar--key { color: $footer-key-foreground; text-style: bold; }
        & > .keybar--key-disabled { color: $footer-key-foreground 50%; text-style: bold; }
        & > .keybar--description { color: $footer-description-foreground; }
        & > .keybar--description-disabled { color: $footer-description-foreground 50%; }
    }
    """

    palette_key: reactive[bool] = reactive(True)
    """Show the command palette's key at the right end."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._spans: list[tuple[int, int, str]] = []  # (first cell, end cell, key to press)

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen) -> None:
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._spans:
            if start <= event.x < end:
                self.app.simulate_key(key)
                return

    def _items(self) -> list[tuple[list[tuple[Binding, bool]], str, bool]]:
        """(keys, description, compact) in binding order; a group's keys share one description."""
        try:
            active = self.screen.active_bindings
        except Exception:  # noqa: BLE001 - not on a screen yet
            return []
        by_action: defaultdict[str, list[tuple[Binding, bool]]] = defaultdict(list)
        for _node, binding, enabled, _tooltip in active.values():
            if binding.show:
                by_action[binding.action].append((binding, enabled))
        items = []
        for group, runs in groupby(by_action.values(), lambda bindings: bindings[0][0].group):
            runs = list(runs)
            if group is not None and len(runs) > 1:
                items.append(([run[0] for run in runs], group.description, group.compact))
            else:
                items += [([run[0]], run[0][0].description, True) for run in runs]
        return items

    def render(self) -> Content:
        parts: list[tuple[str, str] | str] = []
        spans = []
        x = 0
        for keys, description, compact in self._items():
            if parts:
                parts.append(" ")
                x += 1
            for i, (binding, enabled) in enumerate(keys):
                if i and not compact:
                    parts.append(" ")
                    x += 1
                shown = self.app.get_key_display(binding)
                parts.append((shown, ".keybar--key" if enabled else ".keybar--key-disabled"))
                spans.append((x, x + cell_len(shown), binding.key.split(",")[0]))
                x += cell_len(shown)
            enabled = any(e for _, e in keys)
            parts.append((f" {description}", ".keybar--description" if enabled else ".keybar--description-disabled"))
            x += 1 + cell_len(description)
        if self.palette_key and self.app.ENABLE_COMMAND_PALETTE:
            key = self.app.COMMAND_PALETTE_BINDING
            shown = self.app.get_key_display(Binding(key, ""))
            pad = self.size.width - x - cell_len(shown) - len(" palette") - 1
            if pad >= 1:
                parts += [" " * pad, (shown, ".keybar--key"), (" palette", ".keybar--description")]
                spans.append((x + pad, x + pad + cell_len(shown) + len(" palette"), key))
        self._spans = spans
        return Content.assemble(*parts)
