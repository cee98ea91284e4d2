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


# When the keys do not fit, these go first (first listed, first dropped); keys not named here go before
# them all, and KEEP never goes: help, quit and the way back to the picker are what a newcomer looks for.
DROP_ORDER = ("lane_switch", "event", "jump", "export", "zoom", "fit", "stop", "find", "rerun", "lane", "play",
              "run_selected", "axis", "step")
KEEP = ("help", "quit", "toggle_picker")


def _rank(action: str) -> int:
    name = action.split("(", 1)[0]
    if name in KEEP:
        return len(DROP_ORDER) + 1
    return DROP_ORDER.index(name) + 1 if name in DROP_ORDER else 0


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

    def _fitting(self, items: list, room: int) -> list:
        """The items that fit in `room` cells, in their order: the lowest ranked dropped first."""
        def width(item) -> int:
            keys, description, compact = item
            shown = sum(cell_len(self.app.get_key_display(b)) for b, _ in keys)
            return shown + (0 if compact else len(keys) - 1) + 1 + cell_len(description)

        widths = [width(item) for item in items]
        kept = set(range(len(items)))
        total = sum(widths) + max(len(items) - 1, 0)
        # Lowest rank first; among equals, the rightmost.
        for i in sorted(kept, key=lambda i: (_rank(items[i][0][0][0].action), -i)):
            if total <= room or _rank(items[i][0][0][0].action) > len(DROP_ORDER):
                break
            kept.discard(i)
            total -= widths[i] + 1
        return [item for i, item in enumerate(items) if i in kept]

    def render(self) -> Content:
        parts: list[tuple[str, str] | str] = []
        spans = []
        x = 0
        palette = self.palette_key and self.app.ENABLE_COMMAND_PALETTE
        key = self.app.COMMAND_PALETTE_BINDING
        shown_palette = self.app.get_key_display(Binding(key, "")) if palette else ""
        label = " palette"
        room = self.size.width - (cell_len(shown_palette) + len(label) + 1 if palette else 0)
        items = self._items()
        fitting = self._fitting(items, room)
        if palette and len(fitting) < len(items):
            more = self._fitting(items, self.size.width - cell_len(shown_palette) - 1)
            if len(more) > len(fitting):
                label, fitting = "", more  # short of room: the key alone (^p), and another key in its place
        for keys, description, compact in fitting:
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
        if palette:
            shown = shown_palette
            pad = max(self.size.width - x - cell_len(shown) - len(label), 1)
            parts += [" " * pad, (shown, ".keybar--key")]
            if label:
                parts.append((label, ".keybar--description"))
            spans.append((x + pad, x + pad + cell_len(shown) + len(label), key))
        self._spans = spans
        return Content.assemble(*parts)
