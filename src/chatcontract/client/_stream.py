"""Reading a streamed attempt through the transport's one parser: no second decode.

The instrumented transport parses every streamed answer once, as the bytes pass, to build the
call's Exchange; it hands its ``StreamParser`` back in the response's
``extensions["chatcontract.stream"]``. ``StreamReader`` reads what each chunk added to that
parser's assembler (content, reasoning, tool-call fragments) and makes it the caller's
``StreamDelta``: what the caller received is always the result's ``content`` (and
``reasoning_content``), whatever the bytes and however they were split, because both are the
same assembler's. Written once; both client shells use it.
"""

from __future__ import annotations

from typing import Any

from chatcontract.contract import Contract
from chatcontract.transport import STREAM_EXTENSION
from chatcontract.wire import StreamAssembler, StreamParser, StreamResult, StreamVerdict

from ._guard import AttemptWatch
from .result import StreamDelta, ToolCallDelta

__all__ = ["EARLY_STOP", "StreamReader", "no_stream"]

#: Verdicts certain before the end: the client stops reading at once.
EARLY_STOP = frozenset({StreamVerdict.INBAND_ERROR, StreamVerdict.MALFORMED_CHUNK})


def no_stream(contract: Contract, *, expect_usage: bool) -> StreamResult:
    """The stream of an attempt that got no SSE body (nothing was received)."""
    return StreamAssembler(contract=contract, expect_usage=expect_usage).result()


class StreamReader:
    """The deltas an attempt's stream adds, read from the transport's parser of it.

    Build it with :meth:`of` on the response; call :meth:`step` (or :meth:`take`) after each
    chunk passed and :meth:`last` once the response was closed (the parser then delivered an
    event that lost its final blank line), then :attr:`result` for the stream as assembled.
    """

    __slots__ = ("_assembler", "_chunks", "_mark", "_parser", "_tools", "delivered", "pings")

    def __init__(self, parser: StreamParser) -> None:
        self._parser = parser
        self._assembler = parser.assembler
        self._mark = self._assembler.text_mark()
        self._tools = self._assembler.tool_marks()
        self._chunks = self._assembler.chunk_count
        self.delivered = False  # set by the shell once a delta reached the caller
        #: Keep-alive comments seen as of the last :meth:`forward`.
        self.pings = 0

    @classmethod
    def of(cls, extensions: dict[str, Any]) -> StreamReader | None:
        """The reader of a response's stream; None when the answer is not an SSE stream."""
        parser = extensions.get(STREAM_EXTENSION)
        return cls(parser) if isinstance(parser, StreamParser) else None

    def take(self) -> StreamDelta | None:
        """What the stream added since the last call, as one delta; None when nothing."""
        assembler = self._assembler
        mark = self._mark
        content, reasoning = assembler.text_since(mark)
        calls: tuple[ToolCallDelta, ...] = ()
        changed = assembler.tool_calls_since(self._tools) if assembler.has_tool_calls else ()
        if changed:
            calls = tuple(
                ToolCallDelta(index=index, id=call_id, name=name, arguments=arguments)
                for index, call_id, name, arguments in changed
            )
            self._tools = assembler.tool_marks()
        if not (content or reasoning or calls):
            return None
        self._mark = assembler.text_mark()
        return StreamDelta(content=content, reasoning=reasoning, tool_calls=calls)

    def step(self, watch: AttemptWatch) -> StreamDelta | None:
        """After a chunk passed: what to deliver (None: nothing new), the attempt's watch told
        that tokens flow (the first-token limit is met, new data resets the idle limit)."""
        delta = self.take()
        if delta is not None:
            watch.token_seen = self.delivered = True
        if self.new_data() and watch.token_seen:
            watch.data_seen()
        return delta

    def forward(self, watch: AttemptWatch) -> bool:
        """:meth:`step` for a reader that forwards the tapped payloads instead of deltas (the
        same ``delivered`` and the same watch, with no delta built), with :attr:`pings`
        brought up to date; True when a failing verdict is already certain
        (:attr:`early_verdict`): the reader stops. A pass-through reader calls it once per
        read.

        Once text was delivered, ``delivered`` and the watch's ``token_seen`` stay true, so
        the text and tool-call marks are no longer read (nor kept: call :meth:`forwarded_last`,
        not :meth:`last`, at the end)."""
        assembler = self._assembler
        if not self.delivered:
            mark = assembler.text_mark()
            moved = mark != self._mark
            if assembler.has_tool_calls:
                tools = assembler.tool_marks()
                if tools != self._tools:  # a new call, or arguments added (marks only grow)
                    self._tools = tools
                    moved = True
            if moved:
                self._mark = mark
                watch.token_seen = self.delivered = True
        count = assembler.chunk_count  # ``new_data``, inline: once per read
        if count != self._chunks:
            self._chunks = count
            if watch.token_seen:
                watch.data_seen()
        self.pings = self._parser.ping_count
        return assembler.decided in EARLY_STOP

    def tap(self) -> list[bytes]:
        """The data payloads of the good chunks from now on (``StreamParser.tap``): what a
        pass-through proxy forwards, read from the transport's one parser."""
        return self._parser.tap()

    def forwarded_last(self) -> None:
        """:meth:`last` for a reader read with :meth:`forward`: a last event that lost its
        final blank line may still be the first text delivered."""
        if not self.delivered and self.take() is not None:
            self.delivered = True

    def last(self) -> StreamDelta | None:
        """After the response was closed: a last event that lost its final blank line is part
        of the result, so it is delivered as well."""
        delta = self.take()
        if delta is not None:
            self.delivered = True
        return delta

    @property
    def ping_count(self) -> int:
        """Keep-alive comments (``: PING``) seen so far."""
        return self._parser.ping_count

    def new_data(self) -> bool:
        """Whether a data event (a chunk, not a comment or keep-alive) arrived since the last
        call: what resets the idle limit."""
        count = self._assembler.chunk_count
        if count == self._chunks:
            return False
        self._chunks = count
        return True

    @property
    def done_seen(self) -> bool:
        """Whether the stream's ``[DONE]`` arrived: what follows is no part of the answer."""
        return self._assembler.done_seen

    @property
    def early_verdict(self) -> StreamVerdict | None:
        """A failing verdict already certain (in-band error, malformed chunk), else None."""
        verdict = self._assembler.decided
        return verdict if verdict in EARLY_STOP else None

    @property
    def result(self) -> StreamResult:
        """The stream as assembled: the parser's verdict once the body ended or was closed."""
        found = self._parser.result
        return found if found is not None else self._parser.snapshot()
