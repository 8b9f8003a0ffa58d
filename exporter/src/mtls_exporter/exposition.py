"""Prometheus text format (0.0.4) writer that reuses label strings rendered at ingest.

prometheus_client's generate_latest sorts and escapes every label of every sample on
every scrape; with 10,000 Secrets that is ~50,000 samples x ~8 labels. The label set of
a certificate never changes between scrapes, so the store renders it once
(`RenderedLabels.text`) and this writer only formats values. It consumes the very same
Collector output as generate_latest, and falls back to it for metric types it does not
write itself (histograms, summaries), so both renderings say the same thing.
"""

from __future__ import annotations

from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def render_labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape_value(value)}"' for name, value in sorted(labels.items())) + "}"


class RenderedLabels(dict):
    """A label dict that carries its own text rendering; immutable by convention."""

    __slots__ = ("text",)

    def __init__(self, labels: dict[str, str]):
        super().__init__(labels)
        self.text = render_labels(self)


_SIMPLE_TYPES = {"gauge": "gauge", "counter": "counter", "unknown": "untyped"}


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
