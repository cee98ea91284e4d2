"""The scenario picker: scenarios grouped by topic, what to watch for in the highlighted one, and its parameters."""

from __future__ import annotations

from collections.abc import Mapping

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..scenarios import TOPICS, Scenario, ScenarioError


class ParamValidator(Validator):
    """A parameter's text is valid when the scenario can turn it into the default's type."""

    def __init__(self, scenario: Scenario, key: str) -> None:
        super().__init__()
        self.scenario, self.key = scenario, key

    def validate(self, value: str) -> ValidationResult:
        try:
            self.scenario.coerce({self.key: value})
        except ScenarioError as e:
            return self.failure(str(e).split(": ", 1)[-1])
        return self.success()


WRONG = "What the lesson"  # the paragraph that says what the lesson's code (or text) got wrong or left out


def describe(scenario: Scenario) -> Content:
    """The description panel: title, why it cannot run here (if so), what it shows, what to watch for."""
    parts = [Content.styled(scenario.title, "bold"), Content("\n\n")]
    why = getattr(scenario, "unavailable", None)
    if why:
        parts.append(Content.styled(f"✗ Unavailable here: {why}\n\n", "bold $text-warning"))
    paragraphs = scenario.description.strip().split("\n\n")
    # What the lesson's code got wrong comes right after the opening paragraph: at the bottom of a
    # narrow panel nobody scrolls to it.
    wrong = [p for p in paragraphs if p.startswith(WRONG)]
    rest = [p for p in paragraphs if not p.startswith(WRONG)]
    parts.append(Content(rest[0] if rest else ""))
    for p in wrong:
        head, _, tail = p.partition(":")
        parts += [Content("\n\n"), Content.styled(head + ":", "bold $text-warning"), Content(tail)]
    if rest[1:]:
        parts += [Content("\n\n"), Content("\n\n".join(rest[1:]))]
    if scenario.facts:
        parts.append(Content.styled("\n\nYou should see:", "bold"))
        for fact in scenario.facts:
            parts.append(Content(f"\n • {fact}"))
    return Content("").join(parts)


class ScenarioList(OptionList, inherit_bindings=False):
    """The list of scenarios; left, right, home and end stay the app's (they move the cursor)."""

    BINDINGS = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("enter", "select", "Run", show=False),
    ]


class ScenarioPicker(Vertical):
    """Pick a scenario (Enter runs it); edit its parameters below its description."""

    DEFAULT_CSS = """
    ScenarioPicker {
        & > ScenarioList { height: auto; max-height: 45%; scrollbar-size-vertical: 1; }
        & > #picker-about { height: 1fr; padding: 0 1; }
        & #picker-description { color: $text-muted; }
        & > #picker-params { height: auto; padding: 0 1; border-top: solid $primary-darken-2; }
        & .param { height: 1; }
        & .param Label { width: 1fr; }
        & .param Input { width: 12; }
        & #params-title { color: $text-muted; }
    }
    """

    class RunRequested(Message):
        """The user asked to run scenario `name` (Enter on the list or in a parameter)."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    class ParamsEdited(Message):
        """The parameters of scenario `name` changed and are valid: run with `params` from now on."""

        def __init__(self, name: str, params: dict[str, object]) -> None:
            super().__init__()
            self.name, self.params = name, params

    def __init__(self, scenarios: Mapping[str, Scenario], overrides: Mapping[str, Mapping[str, object]],
                 *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.scenarios = scenarios
        self._values = {name: dict(values) for name, values in overrides.items()}
        self._shown: str | None = None

    def compose(self) -> ComposeResult:
        yield ScenarioList(*self._options(), id="picker", compact=True)
        with VerticalScroll(id="picker-about", can_focus=False):
            yield Static("", id="picker-description")
        yield Vertical(id="picker-params")

    def _options(self) -> list[Option]:
        options: list[Option] = []
        topic = None
        for s in self.scenarios.values():
            if s.topic != topic:
                topic = s.topic
                options.append(Option(Content.styled(f"── {TOPICS.get(topic, topic)}", "bold $text-primary"),
                                      disabled=True))
            if getattr(s, "unavailable", None):
                # Dimmed, and marked so it reads without colour; Enter explains instead of running.
                options.append(Option(Content.styled(f"  {s.name} ✗", "italic $text-muted"), id=s.name))
            else:
                options.append(Option(f"  {s.name}", id=s.name))
        return options

    @property
    def highlighted(self) -> str | None:
        """Name of the highlighted scenario."""
        option_list = self.query_one(OptionList)
        if option_list.highlighted is None:
            return None
        return option_list.get_option_at_index(option_list.highlighted).id

    def highlight(self, name: str | None) -> None:
        """Highlight scenario `name` (the first scenario when None)."""
        option_list = self.query_one(OptionList)
        if name is not None and name in self.scenarios:
            option_list.highlighted = option_list.get_option_index(name)
        else:
            first = next((i for i, o in enumerate(option_list.options) if not o.disabled), None)
            option_list.highlighted = first

    def params_of(self, name: str) -> dict[str, object]:
        """The parameters scenario `name` runs with: its defaults, then the edits."""
        return self.scenarios[name].params | self._values.get(name, {})

    def focus_params(self) -> None:
        """Put the focus in the first parameter field (if the scenario has any)."""
        inputs = self.query("#picker-params Input")
        if inputs:
            inputs.first().focus()

    @on(OptionList.OptionHighlighted)
    async def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        name = event.option.id
        if name is None or name == self._shown or name not in self.scenarios:
            return
        self._shown = name
        scenario = self.scenarios[name]
        self.query_one("#picker-description", Static).update(describe(scenario))
        self.query_one("#picker-about").scroll_home(animate=False)
        form = self.query_one("#picker-params")
        await form.remove_children()
        if not scenario.params:
            await form.mount(Label("no parameters", id="params-title"))
            return
        values = self.params_of(name)
        rows = [Label("parameters (Enter runs)", id="params-title")]
        for key, default in scenario.params.items():
            rows.append(Horizontal(
                Label(key),
                Input(str(values[key]), placeholder=str(default), compact=True, id=f"param-{key}",
                      validators=[ParamValidator(scenario, key)], select_on_focus=True),
                classes="param",
            ))
        await form.mount_all(rows)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id in self.scenarios:
            self.post_message(self.RunRequested(event.option.id))

    @on(Input.Changed, "#picker-params Input")
    def _edited(self, event: Input.Changed) -> None:
        event.stop()
        name = self._shown
        if name is None or event.validation_result is None or not event.validation_result.is_valid:
            return
        key = (event.input.id or "").removeprefix("param-")
        scenario = self.scenarios[name]
        value = scenario.coerce({key: event.value})[key]
        self._values.setdefault(name, {})[key] = value
        self.post_message(self.ParamsEdited(name, self.params_of(name)))

    @on(Input.Submitted, "#picker-params Input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._shown is not None and (event.validation_result is None or event.validation_result.is_valid):
            self.post_message(self.RunRequested(self._shown))
