"""One card per device on the home screen, like the VictronConnect device list.

The card keeps a reference to its device's state. Only cards on screen are painted: an update
of a card scrolled out of view costs a flag, not a repaint (issue 12: CPU per reading
independent of the number of cards). A paint rebuilds the card's lines and repaints those that
changed; Textual asks for them one at a time (`render_line`), each converted once per text.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable
from typing import Self

from rich.cells import cell_len
from rich.segment import Segment
from rich.text import Text
from textual.dom import NoScreen
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.style import Style as VisualStyle
from textual.visual import Visual, visualize

from victron_ble_bms.protocol.codes import Severity

from ..format import CODES_UNKNOWN, SEVERITY_STYLE, STATUS_TEXT, main_values, outside
from ..messages import OpenDevice
from ..state import DeviceState, format_age
from .card import Card


class DeviceCard(Card):
    def __init__(self, dev: DeviceState, clock: Callable[[], float]) -> None:
        super().__init__(id=card_id(dev.address), classes="card")
        self.dev = dev
        self.address = dev.address
        self._clock = clock
        self._lines = 0
        # (stale, worst severity, suspect): as the device is now, and as the classes show it
        self._state: tuple[bool, Severity | None, bool] | None = None
        self._classes_now: tuple[bool, Severity | None, bool] | None = None
        self._names: tuple[str | None, ...] | None = None
        self._title_key: tuple[str, str] = ("", "")  # the border title, as `_FINISHED` keys it
        self.needs_paint = False
        self._behind = False  # `_shown` predates the device's state (updated off screen)
        self._shown: list[Text] = []  # the lines last handed to the screen
        # Converted lines per look (width, style), the last two looks: focus comes and goes,
        # and a card losing focus shows again the lines it had before it got it.
        self._looks: dict[tuple[int, VisualStyle], dict[int, tuple[Text, Strip]]] = {}
        # The card's look as a small number (`_look_id`), valid while `_look_valid` holds: what
        # it was computed for (size, line filters, the shared tables' generation); None once
        # Textual would repaint the whole card (`refresh`, `notify_style_update`).
        self._look_valid: tuple[object, ...] | None = None
        self._look_number = -1
        # The finished lines this card took (by line; None: not looked up yet), for the `_shown`,
        # look and border labels in `_strips_of`: a card whose lines did not change answers
        # the screen's next update from this list (every update renders each card in its crop).
        self._strips: list[Strip | None] = []
        self._strips_of: tuple[list[Text] | None, int, object] = (None, -1, None)

    def show(self, dev: DeviceState, now: float, *, paint: bool = True) -> None:
        """Take the device's new state: the title now; height, classes and body when painted.

        Cheap on purpose (called for every card once a second, and per changed device per
        frame): the height is the line count (the grid never measures the text of 500
        cards), and only cards on screen get their height and classes and are repainted: a
        class change makes Textual re-apply the stylesheet to the card (~1 ms), which 500
        devices going stale together would pay at once.
        """
        self.dev = dev
        stale = dev.stale(now)
        self._state = (stale, None if stale else dev.worst, dev.suspect_recent(now))
        names = (dev.advertised_name, dev.label, dev.product)
        if names != self._names:  # the title is rebuilt (plain()) only when a name changes
            self._names = names
            title = outside(dev.title)  # Text: never parsed as markup
            self.border_title = title
            self._title_key = (title.plain, str(title.style))
        if not self.is_mounted:
            self._lines = line_count(dev, now)
            self._shown = []  # built when first rendered (500 cards arrive at once: issue 12)
            self._show_classes()
        elif paint:
            self.paint(now)
        else:
            # Off screen: refreshing it would make Textual lay out the whole grid to find it.
            # It is repainted when it scrolls into view (DeviceListScreen.paint_visible), and
            # keeps its height until then: a line that comes and goes (a suspect mark shown
            # until the change is confirmed, a second later) would lay out all 500 cards
            # twice (issue 26: ~14 layouts a second at 500 devices, a third of a core).
            self.needs_paint = self._behind = True

    def _show_classes(self) -> None:
        state = self._state
        if state is None or state == self._classes_now:
            return
        self._classes_now = state
        self.set_class(state[0], "-stale")
        for sev, style in SEVERITY_STYLE.items():
            self.set_class(state[1] is sev, f"-{style}")
        self.set_class(state[2], "-suspect")

    def state_changes(self, dev: DeviceState, now: float) -> bool:
        """Whether the clock alone changes this card's state (stale, suspect mark expiring)."""
        state = self._state
        return state is None or dev.stale(now) != state[0] or dev.suspect_recent(now) != state[2]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        # The grid's auto rows ask every card for its height on each layout; the line count is
        # known without rendering (no line wraps: the text is cut with an ellipsis).
        return self._lines or super().get_content_height(container, viewport, width)

    def paint(self, now: float | None = None) -> None:
        """Rebuild the card's lines and repaint only those that changed: a reading usually
        changes one or two lines (99.8 % of frames repeat their values, issue 12), and Textual
        renders a line through borders, padding and styles at ~0.1 ms each."""
        self._show_classes()
        now = self._clock() if now is None else now
        count = line_count(self.dev, now)
        if count != self._lines:
            self._lines = count
            self.refresh(layout=True)  # the only change that needs a layout
        lines = card_lines(self.dev, now)
        old, self._shown = self._shown, lines
        self.needs_paint = self._behind = False
        if len(old) != len(lines):
            self.refresh()
            return
        width = self.size.width
        for y, (was, line) in enumerate(zip(old, lines, strict=True)):
            if was != line:
                self.refresh(Region(0, y, width, 1))

    def render_lines(self, crop: Region) -> list[Strip]:
        """The card's lines with its border and padding (issue 26: a card that scrolls into
        view was ~1.1 ms of Textual adding border and padding to freshly converted text,
        ~3 cards per ↓). A finished line depends only on the card's look and the line's text,
        so it is shared by every card that shows the same line in the same look (the bottom
        border, a product's name, a status, a value many devices share): a card coming into
        view renders only the lines no card has shown yet. Keys hold everything Textual
        renders a line from (`_look`); anything else (a mouse selection, a layout pending)
        takes Textual's own path."""
        if not self._shown or self._behind:
            self._catch_up()
        shown = self._shown
        width, height = self.outer_size
        look = self._look_id()
        if look < 0 or height != len(shown) + 2 or self._selection() is not None:
            return super().render_lines(crop)
        labels = (self._title_key, self.border_subtitle)
        was_shown, was_look, was_labels = self._strips_of
        if was_shown is not shown or was_look != look or was_labels != labels:
            self._strips_of = (shown, look, labels)
            self._strips = [None] * height
        mine = self._strips
        finished = _FINISHED
        strips: list[Strip] = []
        missing: list[tuple[int, object]] = []  # (index in `strips`, key)
        for y in crop.line_range:
            strip = mine[y]
            if strip is None:
                if y == 0:
                    key: object = (look, 0, labels[0])
                elif y == height - 1:
                    key = (look, -1, labels[1])
                else:
                    line = shown[y - 1]
                    key = (look, y, line.plain, tuple(line.spans), line.style)
                strip = finished.get(key)
                if strip is None and y == 0:
                    strip = _retitled(look, labels[0])
                    if strip is not None:
                        finished[key] = strip
                if strip is None:
                    missing.append((len(strips), key))
                    strip = _BLANK
                else:
                    mine[y] = strip
            strips.append(strip)
        if missing:
            # Only the lines no card has shown, by Textual's own rendering, from scratch (its
            # per-widget cache may hold lines this card showed before it left the view).
            self._styles_cache.clear()
            if len(finished) > _FINISHED_MAX:
                finished.clear()
                _TITLED.clear()
            run: list[tuple[int, object]] = []
            for item in [*missing, (-1, None)]:  # adjacent lines in one call
                if run and item[0] != run[-1][0] + 1:
                    lines = Region(0, crop.y + run[0][0], width, len(run))
                    for (index, key), strip in zip(run, super().render_lines(lines), strict=True):
                        strips[index] = mine[crop.y + index] = finished[key] = strip
                        if crop.y + index == 0:
                            _TITLED.setdefault(_title_slot(look, labels[0]), (labels[0][0], strip))
                    run = []
                run.append(item)
        if crop.column_span != (0, width):
            x1, x2 = crop.column_span
            return [strip.crop(x1, x2) for strip in strips]
        return strips

    def _selection(self) -> object | None:
        """The mouse selection in this card, if any. A card just removed (its device forgotten
        to keep the fleet bounded) can still be asked for its lines by the screen update that
        was under way: it has no screen to ask then, and Textual's `text_selection` raised
        NoScreen, which ended the dashboard."""
        try:
            return self.text_selection
        except NoScreen:
            return None

    def _look_id(self) -> int:
        """The card's look (`_look`) as a number shared by every card with the same look, or
        -1 when its lines are not shared (a border or padding other than one line above and
        below the text). Computing the look walks the card's styles and ancestors (~0.1 ms,
        asked ~30 times per ↓, issue 26), so it is kept until Textual itself would render the
        whole card again: a full `refresh` (which every style change makes) or a style
        update, or a new size or line filters."""
        valid = (self.outer_size, tuple(map(id, self.get_line_filters())), _LOOK_IDS_GENERATION)
        if valid != self._look_valid:
            gutter = self.styles.gutter  # one line of border above and below the text
            if gutter.top != 1 or gutter.bottom != 1 or self.BLANK:
                self._look_number = -1
            else:
                if len(_LOOK_IDS) > _LOOK_IDS_MAX:
                    forget_finished()
                    valid = (valid[0], valid[1], _LOOK_IDS_GENERATION)
                self._look_number = self._sibling_look(valid)
                if self._look_number < 0:
                    look = self._look()
                    number = _LOOK_IDS.get(look)
                    if number is None:
                        number = _LOOK_IDS[look] = next(_LOOK_NUMBERS)
                    self._look_number = number
                    siblings = _SIBLINGS.setdefault((id(self.parent), valid), [])
                    siblings.append(weakref.ref(self))
                    del siblings[:-_SIBLINGS_KEPT]
            self._look_valid = valid
        return self._look_number

    def _sibling_look(self, valid: tuple[object, ...]) -> int:
        """The look of a card in the same grid, of the same size, whose styles equal this
        card's (Textual's own comparison of their rules): the same look, without walking the
        styles and ancestors again (each card a ↓ scrolls into view, ~3 a key). -1 if none."""
        parent, styles = self.parent, self.styles
        for ref in _SIBLINGS.get((id(parent), valid), ()):
            other = ref()
            if (
                other is not None
                and other._look_valid == valid
                and other.parent is parent
                and other.styles == styles
            ):
                return other._look_number
        return -1

    def _look(self) -> tuple[object, ...]:
        """What Textual draws a card's line from, besides its text: sizes, colours, border,
        padding, the title's style, the app's filters and theme."""
        styles = self.styles
        app = self.app
        return (
            self.outer_size,
            self.visual_style,
            self.background_colors,
            styles.border,
            styles.outline,
            styles.padding,
            styles.hatch,
            styles.border_title_style,
            styles.border_title_color,
            styles.border_title_background,
            styles.border_title_align,
            styles.text_opacity,
            styles.tint,
            self.opacity,
            tuple(map(id, self.get_line_filters())),
            id(app.ansi_theme),
            app.native_ansi_color,
        )

    def refresh(
        self, *regions: Region, repaint: bool = True, layout: bool = False, recompose: bool = False
    ) -> Self:
        if not regions:  # Textual renders the whole card again: so does the look
            self._look_valid = None
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def notify_style_update(self) -> None:
        self._look_valid = None
        super().notify_style_update()

    def render(self) -> Text:
        return Text("\n").join(card_lines(self.dev, self._clock()))

    def render_line(self, y: int) -> Strip:
        """One content line (Textual's Line API), converted once per distinct text, width and
        style: a repaint of the lines that did not change costs a dict look-up."""
        if not self._shown or self._behind:
            self._catch_up()
        shown, width, style = self._shown, self.size.width, self.visual_style
        if y >= len(shown):
            return Strip.blank(width, style.rich_style)
        if self._selection() is not None:
            # A selection's offsets count the lines of the whole card: render it as one text.
            return self._render_whole(width, style)[y]
        cache = self._cache((width, style))
        cached = cache.get(y)
        if cached is not None and cached[0] == shown[y]:
            return cached[1]
        missing = [i for i, line in enumerate(shown) if cache.get(i, (None,))[0] != line]
        if len(missing) > 3:  # first paint, or a new look (focus, stale): one conversion
            whole = self._render_whole(width, style)
            for i in missing:
                cache[i] = (shown[i], whole[i])
            return whole[y]
        strips = Visual.to_strips(self, visualize(self, shown[y]), width, 1, style)
        # Textual marks each cell with its (x, y) in the content (mouse selection reads it):
        # the line was rendered alone, as line 0.
        strip = strips[0].apply_offsets(0, y) if strips else Strip.blank(width, style.rich_style)
        cache[y] = (shown[y], strip)
        return strip

    def _catch_up(self) -> None:
        """Take the device's state now when Textual renders the card before `paint` (a card
        that scrolls into view is rendered by the screen update that scrolls, and painted by
        DeviceListScreen.paint_visible after it): its first frame in view shows the values of
        now, not for one frame those it held off screen. Not when the height changes: that
        waits for `paint`, which lays out. When its classes, too, are as the device is, the
        card is painted: `paint` would build the same lines again (issue 26: each card a ↓
        scrolls into view built its lines twice)."""
        self._behind = False
        now = self._clock()
        if not self._shown or line_count(self.dev, now) == self._lines:
            self._shown = card_lines(self.dev, now)
            if self._state == self._classes_now:
                self.needs_paint = False

    def _cache(self, look: tuple[int, VisualStyle]) -> dict[int, tuple[Text, Strip]]:
        cache = self._looks.get(look)
        if cache is None:
            if len(self._looks) >= 2:
                del self._looks[next(iter(self._looks))]  # the older look
            cache = self._looks[look] = {}
        return cache

    def _render_whole(self, width: int, style: VisualStyle) -> list[Strip]:
        """All lines in one conversion, as Textual renders a widget's text (one strip a line:
        lines never wrap)."""
        height = len(self._shown)
        whole = visualize(self, Text("\n").join(self._shown))
        strips = Visual.to_strips(self, whole, width, height, style)
        blank = Strip.blank(width, style.rich_style)
        return strips + [blank] * (height - len(strips))

    def open_message(self) -> Message:
        return OpenDevice(self.address)


# Finished lines (border, padding and text) shared by all cards: (look id, y, text) → Strip.
_FINISHED: dict[object, Strip] = {}
_FINISHED_MAX = 4096
_BLANK = Strip([])
# Looks (DeviceCard._look) by number: a line's key hashes a number, not ~17 styles and colours.
# A number is never reused (cards keep theirs with the lines they took): when the table is
# full, it starts again with the finished lines, and every card looks its look up again (a new
# generation).
_LOOK_IDS: dict[tuple[object, ...], int] = {}
_LOOK_NUMBERS = itertools.count()
# Per grid and (size, filters, generation): the last cards that computed a look there, one a
# look as a rule (DeviceCard._sibling_look); weakly, so a card removed (its device forgotten,
# its screen closed) is not kept alive here.
_SIBLINGS: dict[tuple[int, tuple[object, ...]], list[weakref.ref[DeviceCard]]] = {}
_SIBLINGS_KEPT = 16
_LOOK_IDS_MAX = 256
_LOOK_IDS_GENERATION = 0


def forget_finished() -> None:
    """Start the shared tables again: every card looks its look up again, and takes or renders
    its lines as if no card had finished any."""
    global _LOOK_IDS_GENERATION
    _LOOK_IDS.clear()
    _FINISHED.clear()
    _TITLED.clear()
    _SIBLINGS.clear()
    _LOOK_IDS_GENERATION += 1


# A top border Textual finished for a title, per (look, title style, title length): another
# title of the same length and style in the same look differs from it only in the title's own
# text (issue 26: every card has a title of its own, ~0.15 ms of Textual's rendering each, ~3
# cards per ↓). Only for titles whose every character is one cell wide and printable, and
# only where the title's text is found once, in one segment, in the finished border: anything
# else (a title cut with an ellipsis, wide characters) is rendered by Textual.
_TITLED: dict[tuple[int, str, int], tuple[str, Strip]] = {}


def _title_slot(look: int, title: tuple[str, str]) -> tuple[int, str, int]:
    text, style = title
    if not text.isprintable() or text != text.strip() or cell_len(text) != len(text):
        return (-1, "", 0)  # never looked up
    return (look, style, len(text))


def _retitled(look: int, title: tuple[str, str]) -> Strip | None:
    slot = _title_slot(look, title)
    found = _TITLED.get(slot) if slot[0] >= 0 else None
    if found is None:
        return None
    was, border = found
    segments = list(border)
    where = [i for i, segment in enumerate(segments) if was in segment.text]
    if len(where) != 1 or segments[where[0]].text.count(was) != 1:
        return None
    text, style, control = segments[where[0]]
    segments[where[0]] = Segment(text.replace(was, title[0]), style, control)
    return Strip(segments, border.cell_length)


def card_lines(dev: DeviceState, now: float) -> list[Text]:
    """The card's body, one Text per line. Styles are spans only (a Text's own style is not
    part of its equality), so equal lines look the same. Lines never wrap: the card's CSS
    cuts them with an ellipsis."""
    lines = [
        _line(dev.product or "unknown product", "bold"),
        _line().append_text(STATUS_TEXT[dev.status]),
    ]
    for label, value in main_values(dev.record):
        lines.append(
            _line(f"{label:<12}").append_text(value if isinstance(value, Text) else Text(value))
        )
    if dev.codes or dev.codes_unknown:
        line = _line("Codes       ")
        for active in sorted(dev.codes.values(), key=lambda a: -a.code.severity):
            line.append(active.code.id + " ", style=SEVERITY_STYLE[active.code.severity])
        if dev.codes_unknown:
            line.append(CODES_UNKNOWN, style="bold yellow")
        lines.append(line)
    if dev.suspect_recent(now):
        lines.append(_line("⚠ suspect frame ignored: ", "bold magenta").append(dev.suspect or ""))
    stale = dev.stale(now)
    age = format_age(dev.age(now))
    rssi = "—" if dev.rssi is None else f"{dev.rssi} dBm"
    if stale:
        lines.append(_line(f"stale · last heard {age} ago", "bold yellow"))
    else:
        lines.append(_line(f"{rssi} · {age} ago", "dim"))
    return lines


def _line(text: str = "", style: str = "") -> Text:
    line = Text()
    return line.append(text, style=style or None) if text else line


_VALUE_LINES: dict[type, int] = {}


def line_count(dev: DeviceState, now: float) -> int:
    """Lines of a card's body; the number of main values is fixed per record type (cached:
    computing the values means decoding fields)."""
    record = dev.record
    values = 0
    if record is not None:
        values = _VALUE_LINES.get(type(record), -1)
        if values < 0:
            values = _VALUE_LINES[type(record)] = len(main_values(record))
    return 3 + values + bool(dev.codes or dev.codes_unknown) + dev.suspect_recent(now)


def card_id(address: str) -> str:
    # Addresses are normalised by the sources; anything else is reduced to safe id characters.
    return "card-" + "".join(ch for ch in address.lower() if ch.isalnum())
