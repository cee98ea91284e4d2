"""Command palette: run any scenario or edit its parameters by name (view commands are the app's system commands)."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ScenarioCommands(Provider):
    """`Run <scenario>` and `Parameters of <scenario>` for every scenario in the app's catalogue."""

    def _commands(self) -> list[tuple[str, str, object]]:
        app = self.app
        scenarios = getattr(app, "scenarios", {})
        out = []
        for s in scenarios.values():
            out.append((f"Run {s.name}", s.title, partial(app.run_scenario, s.name)))
            if s.params:
                keys = ", ".join(s.params)
                out.append((f"Parameters of {s.name}", f"edit {keys} before running",
                            partial(app.edit_params, s.name)))
        return out

    async def discover(self) -> Hits:
        for text, help_text, command in self._commands():
            if text.startswith("Run "):
                yield DiscoveryHit(text, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, command in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), command, text=text, help=help_text)
