"""Modal screens: help (keys and glyphs), errors, export, find, the lane filter and warnings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from .lanes import GLYPHS, KIND_ICONS
from ..trace.text import clean

GLYPH_LEGEND = (
    (GLYPHS[1], "running: the lane has the CPU (threads: holding the GIL, running Python code)"),
    (GLYPHS[7], "ran briefly: started running in a cell it spent mostly waiting (time axis)"),
    (GLYPHS[2], "ready: woken, waiting for its turn (threads: runnable, waiting for the GIL)"),
    (GLYPHS[3], "waiting: sleeping, blocked on a lock, IO, a future ... or any system call (threads)"),
    (GLYPHS[5], "blocking the thread: a task, greenlet or generator in a call that holds its whole thread"),
    ("", "(time.sleep, a blocking recv, a lock) instead of handing it to its event loop or hub: the"),
    ("", "lanes it shares the thread with cannot run, and are drawn ready (▒) when they could have"),
    ("' '", "not started yet, or done"),
    (GLYPHS[10], "a greenlet created but not started: nothing has switched to it yet (`never`: nothing ever did)"),
    (GLYPHS[6], "an exception escaped the lane"),
    (GLYPHS[8], "IO phase 1: a read waits for its data to reach the kernel buffer (IO scenarios)"),
    (GLYPHS[9], "IO phase 2: the data is copied into the program's buffer; at least one column wide,"),
    ("", "so magnified wherever it lasted less than a column (microseconds, usually)"),
    ("▼ │ ┼ ╋ ╂ ┿", "the cursor (the current switch) crossing an idle, waiting, running, ready, blocking cell"),
)


class HelpScreen(ModalScreen[None]):
    """Every key, what the glyphs mean and how to read a lane."""

    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss", "Close"),
    ]

    def __init__(self, keys: Sequence[tuple[str, str]]) -> None:
        super().__init__(id="help")
        self.keys = keys

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="dialog"):
            yield Label("concurview: keys and glyphs", classes="dialog-title")
            with VerticalScroll(id="help-body"):
                yield Static(self._text(), id="help-text")
            yield Label("esc closes", classes="dialog-hint")

    def _text(self) -> Content:
        width = max(len(k) for k, _ in self.keys)
        lines = [Content.styled("Keys", "bold")]
        lines += [Content.assemble((f"  {key:<{width}}  ", "bold $text-accent"), what) for key, what in self.keys]
        lines += [Content(""), Content.styled("Glyphs (they read without colour too)", "bold")]
        gw = max(len(g) for g, _ in GLYPH_LEGEND)
        lines += [Content.assemble((f"  {glyph:<{gw}}  ", "bold"), what) for glyph, what in GLYPH_LEGEND]
        lines += [Content(""), Content.styled("Lanes", "bold")]
        icons = "  ".join(f"{icon} {kind}" for kind, icon in KIND_ICONS.items())
        lines += [Content(f"  {icons}"),
                  Content("  Children are indented under their parent: pool -> workers, process -> threads,"),
                  Content("  thread -> its tasks or greenlets. Each label ends with the lane's state at the cursor."),
                  Content(""), Content.styled("Threads (the GIL view)", "bold"),
                  Content("  A native sampler looks at every thread about each millisecond while the program is"),
                  Content("  busy. With a GIL one thread at a time runs Python code: running is holding the GIL"),
                  Content("  (or C code that released it), ready is runnable but waiting for the GIL, waiting is"),
                  Content("  a recorded wait or any system call blocked in the kernel (named after the call and"),
                  Content("  the program's line). Done: the thread has ended. The header says when this Python"),
                  Content("  cannot show the GIL (\"GIL view: not available\") or has none (\"free-threaded\")."),
                  Content(""), Content.styled("Axes", "bold"),
                  Content("  t switches between the time axis (columns are equal stretches of time) and the"),
                  Content("  switch axis (one column per switch: who ran after whom, however short)."),
                  Content("  A cell too small to draw shows the state the lane spent most of it in.")]
        return Content("\n").join(lines)


class ErrorScreen(ModalScreen[None]):
    """Something went wrong with a run or a trace: say what, keep the app usable.

    Its texts carry a trace's, a program's or a file's strings (an error's text, a footer's reason, a
    loader's message quoting the file): they are shown cleaned (text.clean), never sent raw.
    """

    BINDINGS = [Binding("escape,enter", "dismiss", "Close")]

    def __init__(self, title: str, message: str, details: str = "") -> None:
        super().__init__(id="error")
        self.title_text = clean(title, one_line=True)
        self.message = clean(message).expandtabs(4)
        self.details = clean(details).expandtabs(4)

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box", classes="dialog"):
            yield Label(Content.styled(f"✗ {self.title_text}", "bold"), classes="dialog-title")
            yield Static(Content(self.message), id="error-message")
            if self.details:
                with VerticalScroll(id="error-details"):
                    yield Static(Content(self.details))
            with Horizontal(classes="dialog-buttons"):
                yield Button("OK", variant="error", id="error-ok")

    @on(Button.Pressed, "#error-ok")
    def _ok(self) -> None:
        self.dismiss()


class ExportScreen(ModalScreen[str | None]):
    """Ask where to export: the trace goes to PATH (JSON Lines), a screenshot beside it (.svg)."""

    BINDINGS = [Binding("escape", "dismiss", "Cancel")]

    def __init__(self, default: str) -> None:
        super().__init__(id="export")
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box", classes="dialog"):
            yield Label("Export the trace (JSON Lines) and a screenshot (SVG)", classes="dialog-title")
            yield Input(self.default, id="export-path")
            yield Label("the screenshot goes beside it, as .svg · enter exports · esc cancels",
                        classes="dialog-hint")

    @on(Input.Submitted, "#export-path")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


class FilterScreen(ModalScreen[str | None]):
    """Type the lane filter: name substrings, `kind:task`, `state:wait` (at the cursor), `waited:Lock`;
    enter applies it, an empty pattern or esc clears it (dismissed with "")."""

    BINDINGS = [Binding("escape", "clear", "Clear")]

    def __init__(self, current: str = "") -> None:
        super().__init__(id="lane-filter")
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Show only the lanes that match", classes="dialog-title")
            yield Input(self.current, placeholder="handle  kind:task  state:wait  waited:Lock", id="filter-text")
            yield Label("every term must match: a name substring · kind:K\n"
                        "state:run|ready|wait|block|done (at the cursor) · waited:X (waited on X)\n"
                        "enter applies · esc or an empty pattern clears", classes="dialog-hint")

    @on(Input.Submitted, "#filter-text")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_clear(self) -> None:
        self.dismiss("")


@dataclass(frozen=True)
class Found:
    """One find result: a lane, a run or wait by its reason, or a line a lane printed."""

    label: str
    lane: int
    event: int | None = None  # the event to put the cursor on (a run, a wait, a log line)


class WarningsScreen(ModalScreen[Found | None]):
    """What a learner should notice in this trace (trace/lints.py): one line each; Enter jumps to it."""

    BINDINGS = [Binding("escape,w", "dismiss", "Close")]

    def __init__(self, found: Sequence[Found]) -> None:
        super().__init__(id="warnings")
        self.found = list(found)

    def compose(self) -> ComposeResult:
        with Vertical(id="warnings-box", classes="dialog"):
            n = len(self.found)
            yield Label(f"{n} warning{'s' if n != 1 else ''}: what to notice in this run", classes="dialog-title")
            if self.found:
                # The lints quote lane names and reasons from the trace: cleaned where they become options.
                yield OptionList(*(Option(Content("! " + clean(f.label, one_line=True))) for f in self.found),
                                 id="warnings-list")
            else:
                yield Static("nothing: no lane blocked its event loop, hub or thread", id="warnings-none")
            yield Label("↑↓ choose · enter jumps there · esc closes", classes="dialog-hint")

    @on(OptionList.OptionSelected, "#warnings-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.found[event.option_index])


class FindScreen(ModalScreen[Found | None]):
    """Find a lane by name, a run or wait by its reason, or a log line by text; Enter jumps there."""

    BINDINGS = [
        Binding("escape", "dismiss", "Cancel"),
        Binding("down", "results_down", "Next result", show=False),
        Binding("up", "results_up", "Previous result", show=False),
    ]

    def __init__(self, search: Callable[[str], list[Found]], query: str = "") -> None:
        super().__init__(id="find")
        self.search = search
        self.query_text = query
        self._found: list[Found] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="find-box", classes="dialog"):
            yield Label("Find a lane, a switch or a log line", classes="dialog-title")
            yield Input(self.query_text, placeholder="lane name, reason (work(2), sleep, Lock) or text",
                        id="find-query")
            yield OptionList(id="find-results")
            yield Label("↑↓ choose · enter jumps · esc cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self._update(self.query_text)

    @on(Input.Changed, "#find-query")
    def _changed(self, event: Input.Changed) -> None:
        self._update(event.value)

    @on(Input.Submitted, "#find-query")
    def _submitted(self) -> None:
        results = self.query_one("#find-results", OptionList)
        index = results.highlighted
        self.dismiss(self._found[index] if index is not None and index < len(self._found) else None)

    @on(OptionList.OptionSelected, "#find-results")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self._found[event.option_index])

    def action_results_down(self) -> None:
        self.query_one("#find-results", OptionList).action_cursor_down()

    def action_results_up(self) -> None:
        self.query_one("#find-results", OptionList).action_cursor_up()

    def _update(self, query: str) -> None:
        self._found = self.search(query) if query.strip() else []
        results = self.query_one("#find-results", OptionList)
        # Lane names, reasons and log lines from the trace: cleaned where they become options.
        results.set_options([Option(Content(clean(f.label, one_line=True))) for f in self._found])
        if self._found:
            results.highlighted = 0
