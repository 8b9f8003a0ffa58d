"""Prometheus text format (0.0.4) writer that reuses label strings rendered at ingest.

prometheus_client's generate_latest sorts and escapes every label of every sample on
every scrape; with 10,000 Secrets that is ~50,000 samples x ~8 labels. The label set of
a certificate never changes between scrapes, so the store renders it once
(`RenderedLabels.text`) and this writer only formats values. It consumes the very same
Collector output as generate_latest, and falls back to it for metric types it does not
write itself (histograms, summaries), so both renderings say the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render_labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape_value(value)}"' for name, value in sorted(labels.items())) + "}"


_LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_UNESCAPE = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}


def _unescape_value(value: str) -> str:
    if "\\" not in value:
        return value
    return re.sub(r'\\[\\n"]', lambda match: _UNESCAPE[match.group(0)], value)


class RenderedLabels(Mapping):
    """A read-only label mapping that keeps only its text rendering.

    A certificate's label set never changes, so it is rendered once at ingest; the
    writer below copies `text` as is. Only the text is kept (one str, not a dict beside
    it: ~250 bytes less per certificate, 25 MB at 100,000); the rare readers of
    individual labels (prometheus_client's own writer, tests) get them parsed back.
    """

    __slots__ = ("text",)

    def __init__(self, labels: dict[str, str]):
        self.text = render_labels(labels)

    def _parsed(self) -> dict[str, str]:
        return {name: _unescape_value(value) for name, value in _LABEL_PAIR.findall(self.text)}

    def __getitem__(self, name: str) -> str:
        return self._parsed()[name]

    def __iter__(self):
        return iter(self._parsed())

    def __len__(self) -> int:
        return len(self._parsed())

    def items(self):
        return self._parsed().items()

    def __eq__(self, other):
        return dict(self.items()) == (dict(other.items()) if isinstance(other, Mapping) else other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"RenderedLabels({self._parsed()!r})"


_SIMPLE_TYPES = {"gauge": "gauge", "counter": "counter", "unknown": "untyped"}

_INF = float("inf")


def format_value(value: float) -> str:
    """The value as generate_latest prints it (floatToGoString), minus its overhead.

    Integral values (timestamps) take the cheap path, as they always did here; the
    others repeat floatToGoString's rule (Go switches to exponents sooner than Python).
    """
    value = float(value)
    if value.is_integer() and -1e15 < value < 1e15:
        return repr(value)
    if value != value or value == _INF or value == -_INF:
        return floatToGoString(value)
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


class TextGauge(Metric):
    """A gauge family of (pre-rendered label text, value) pairs.

    The certificate families hold one sample per certificate (100,000 each for 100,000
    Secrets): building a prometheus_client Sample per series only for the writer to take
    it apart again was most of a scrape. This family keeps the label sets and values in
    two lists and renders lines straight from them (`render_chunks`); `samples` is still
    there, built on first use, for prometheus_client's own writer and anything else that
    reads families the usual way.
    """

    def __init__(self, name: str, documentation: str, labels: list, values: list):
        super().__init__(name, documentation, "gauge")
        self._labels = labels  # RenderedLabels, one per series
        self._values = values
        self._samples = None  # built on first use of .samples

    @property
    def samples(self):
        if self._samples is None:
            name = self.name
            self._samples = [Sample(name, labels, value) for labels, value in zip(self._labels, self._values)]
        return self._samples

    @samples.setter
    def samples(self, value):
        self._samples = value

    def release(self) -> None:
        """Drop the series once written."""
        self._labels, self._values, self._samples = [], [], []

    def render_chunks(self, chunk_lines: int):
        """Sample lines as str chunks of `chunk_lines` lines."""
        name, labels, values = self.name, self._labels, self._values
        for start in range(0, len(values), chunk_lines):
            # format_value's integral case inline: timestamps and 0/1 skip a call.
            yield "".join(
                [
                    f"{name}{label_set.text} "
                    f"{repr(value) if value.__class__ is float and value.is_integer() and -1e15 < value < 1e15 else format_value(value)}\n"
                    for label_set, value in zip(labels[start : start + chunk_lines], values[start : start + chunk_lines])
                ]
            )


_CHUNK_LINES = 2048


class _OneFamily:
    """Adapter so generate_latest can render a single family it knows better."""

    def __init__(self, metric):
        self.metric = metric

    def collect(self):
        return [self.metric]


def iter_text(registry: CollectorRegistry):
    """Yield the exposition as UTF-8 chunks of a few thousand lines.

    Families are consumed as the collector yields them and dropped once written, and
    output leaves in chunks: a scrape's transient memory is one family and one chunk,
    not the whole body (15 MB for 10,000 Secrets) held as a list, then a str, then bytes.
    """
    lines: list[str] = []
    append = lines.append
    for metric in registry.collect():
        exposed_type = _SIMPLE_TYPES.get(metric.type)
        if exposed_type is None:
            # Histograms, summaries, info...: prometheus_client's own writer.
            append(generate_latest(_OneFamily(metric)).decode("utf-8"))
            continue
        name = metric.name + "_total" if metric.type == "counter" else metric.name
        documentation = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        append(f"# HELP {name} {documentation}\n# TYPE {name} {exposed_type}\n")
        if isinstance(metric, TextGauge) and metric._samples is None:
            if lines:
                yield "".join(lines).encode("utf-8")
                lines.clear()
            for chunk in metric.render_chunks(_CHUNK_LINES):
                yield chunk.encode("utf-8")
            metric.release()
            continue
        for sample in metric.samples:
            labels = sample.labels
            label_text = labels.text if isinstance(labels, RenderedLabels) else render_labels(labels)
            value = sample.value
            # floatToGoString is what generate_latest prints; integral values take the
            # cheap path because timestamps dominate these families.
            value_text = repr(float(value)) if float(value).is_integer() and abs(value) < 1e15 else floatToGoString(value)
            append(f"{sample.name}{label_text} {value_text}\n")
            if len(lines) >= _CHUNK_LINES:
                yield "".join(lines).encode("utf-8")
                lines.clear()
        # The family's samples are written: let them go before the next family.
        metric.samples = []
    if lines:
        yield "".join(lines).encode("utf-8")


def render_text(registry: CollectorRegistry) -> bytes:
    return b"".join(iter_text(registry))
