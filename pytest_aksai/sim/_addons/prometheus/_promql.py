"""The PromQL the scalers and dashboards use, evaluated over the scraped samples.

Parsing is `promql-parser` (the Rust PromQL parser's Python binding); evaluation covers instant vector
selectors with label matchers (5-minute lookback, series of vanished targets are stale), `rate`,
`increase` and `irate` over counters (with reset handling and Prometheus' extrapolation), `sum`, `avg`,
`max`, `min`, `count` with `by`/`without`, `histogram_quantile`, number literals, parentheses, unary minus
and arithmetic/comparison between a vector and a scalar or two vectors with identical label sets.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import promql_parser

Labels = tuple[tuple[str, str], ...]
LOOKBACK = 300.0


class QueryError(Exception):
    """`bad_data` / `execution` errors, with Prometheus' wording where the sim has it."""

    def __init__(self, message: str, error_type: str = "bad_data") -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass
class Series:
    labels: Labels
    samples: list[tuple[float, float]] = field(default_factory=list)
    stale_at: float | None = None


@dataclass(frozen=True)
class Sample:
    labels: Labels
    value: float


Vector = list[Sample]
Value = Vector | float


def _name(labels: Labels) -> str:
    return dict(labels).get("__name__", "")


def _drop_name(labels: Labels) -> Labels:
    return tuple((k, v) for k, v in labels if k != "__name__")


def _matches(labels: dict[str, str], matcher: object) -> bool:
    op = str(getattr(matcher, "op"))  # noqa: B009 - the binding's attribute
    value = labels.get(str(getattr(matcher, "name")), "")  # noqa: B009
    want = str(getattr(matcher, "value"))  # noqa: B009
    if op.endswith("NotEqual"):
        return value != want
    if op.endswith("NotRe"):
        return re.fullmatch(want, value) is None
    if op.endswith("Re"):
        return re.fullmatch(want, value) is not None
    return value == want


class Evaluator:
    def __init__(self, series: Callable[[], Iterable[Series]], now: float) -> None:
        self._series = series
        self.now = now

    def query(self, text: str) -> Value:
        try:
            expr = promql_parser.parse(text)
        except Exception as exc:  # the binding raises plain exceptions with the parser's message
            raise QueryError(f'invalid parameter "query": {exc}') from None
        return self.eval(expr)

    # ---- selectors -------------------------------------------------------------------------------------
    def _select(self, vs: object) -> list[Series]:
        name = getattr(vs, "name", None)
        matchers = list(getattr(getattr(vs, "matchers"), "matchers"))  # noqa: B009
        out = []
        for series in self._series():
            labels = dict(series.labels)
            if name and labels.get("__name__") != name:
                continue
            if all(_matches(labels, m) for m in matchers):
                out.append(series)
        return out

    def _instant(self, vs: object) -> Vector:
        out: Vector = []
        for series in self._select(vs):
            if series.stale_at is not None and series.stale_at <= self.now:
                continue
            recent = [(t, v) for t, v in series.samples if self.now - LOOKBACK < t <= self.now]
            if recent:
                out.append(Sample(series.labels, recent[-1][1]))
        return out

    def _range(self, ms: object) -> tuple[list[tuple[Labels, list[tuple[float, float]]]], float]:
        window = float(getattr(ms, "range").total_seconds())  # noqa: B009
        vs = getattr(ms, "vector_selector")  # noqa: B009
        selected = [
            (series.labels, [(t, v) for t, v in series.samples if self.now - window < t <= self.now])
            for series in self._select(vs)
        ]
        return selected, window

    # ---- evaluation ------------------------------------------------------------------------------------
    def eval(self, expr: object) -> Value:
        kind = type(expr).__name__
        if kind == "NumberLiteral":
            return float(getattr(expr, "val"))  # noqa: B009
        if kind == "ParenExpr":
            return self.eval(getattr(expr, "expr"))  # noqa: B009
        if kind == "UnaryExpr":
            inner = self.eval(getattr(expr, "expr"))  # noqa: B009
            return (
                -inner
                if isinstance(inner, float)
                else [Sample(_drop_name(s.labels), -s.value) for s in inner]
            )
        if kind == "VectorSelector":
            return self._instant(expr)
        if kind == "Call":
            return self._call(expr)
        if kind == "AggregateExpr":
            return self._aggregate(expr)
        if kind == "BinaryExpr":
            return self._binary(expr)
        raise QueryError(f"the simulated Prometheus does not evaluate {kind} expressions", "execution")

    def _call(self, expr: object) -> Value:
        func = str(getattr(getattr(expr, "func"), "name"))  # noqa: B009
        args = list(getattr(expr, "args"))  # noqa: B009
        if func in ("rate", "increase", "irate"):
            series, window = self._range(args[0])
            out: Vector = []
            for labels, samples in series:
                result = _counter_rate(samples, window, self.now, func)
                if result is not None:
                    out.append(Sample(_drop_name(labels), result))
            return out
        if func == "histogram_quantile":
            phi = self.eval(args[0])
            vector = self.eval(args[1])
            if not isinstance(phi, float) or isinstance(vector, float):
                raise QueryError("histogram_quantile expects a scalar and an instant vector")
            return _histogram_quantile(phi, vector)
        if func == "vector":
            value = self.eval(args[0])
            return [Sample((), value)] if isinstance(value, float) else value
        if func == "scalar":
            value = self.eval(args[0])
            if isinstance(value, float):
                return value
            return value[0].value if len(value) == 1 else math.nan
        raise QueryError(f"the simulated Prometheus does not implement the function {func}()", "execution")

    def _aggregate(self, expr: object) -> Vector:
        op = str(getattr(expr, "op")).strip()  # noqa: B009
        inner = self.eval(getattr(expr, "expr"))  # noqa: B009
        if isinstance(inner, float):
            raise QueryError("expected type instant vector in aggregation expression, got scalar")
        modifier = getattr(expr, "modifier")  # noqa: B009
        labels_of: Callable[[Labels], Labels]
        if modifier is None:
            labels_of = lambda _labels: ()  # noqa: E731
        else:
            names = set(getattr(modifier, "labels"))  # noqa: B009
            if str(getattr(modifier, "type")).endswith("Without"):  # noqa: B009
                labels_of = lambda labels: tuple((k, v) for k, v in _drop_name(labels) if k not in names)  # noqa: E731
            else:
                labels_of = lambda labels: tuple((k, v) for k, v in labels if k in names)  # noqa: E731
        groups: dict[Labels, list[float]] = defaultdict(list)
        for sample in inner:
            groups[labels_of(sample.labels)].append(sample.value)
        reducers: dict[str, Callable[[list[float]], float]] = {
            "sum": sum,
            "avg": lambda values: sum(values) / len(values),
            "max": max,
            "min": min,
            "count": lambda values: float(len(values)),
        }
        reduce = reducers.get(op)
        if reduce is None:
            raise QueryError(f"the simulated Prometheus does not implement the aggregation {op}", "execution")
        return [Sample(labels, float(reduce(values))) for labels, values in groups.items()]

    def _binary(self, expr: object) -> Value:
        op = str(getattr(expr, "op")).strip()  # noqa: B009
        lhs, rhs = self.eval(getattr(expr, "lhs")), self.eval(getattr(expr, "rhs"))  # noqa: B009
        fn = _OPS.get(op)
        if fn is None:
            raise QueryError(f"the simulated Prometheus does not implement the operator {op}", "execution")
        comparison = op in ("==", "!=", ">", "<", ">=", "<=")
        if isinstance(lhs, float) and isinstance(rhs, float):
            return float(fn(lhs, rhs))
        if isinstance(rhs, float) and not isinstance(lhs, float):
            pairs = [(s, s.value, rhs) for s in lhs]
        elif isinstance(lhs, float) and not isinstance(rhs, float):
            pairs = [(s, lhs, s.value) for s in rhs]
        else:
            assert not isinstance(lhs, float) and not isinstance(rhs, float)
            right = {_drop_name(s.labels): s.value for s in rhs}
            pairs = [(s, s.value, right[_drop_name(s.labels)]) for s in lhs if _drop_name(s.labels) in right]
        out: Vector = []
        for sample, a, b in pairs:
            result = fn(a, b)
            if comparison:
                if result:
                    out.append(Sample(sample.labels, a))
            else:
                out.append(Sample(_drop_name(sample.labels), float(result)))
        return out


def _div(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 else math.copysign(math.inf, a)
    return a / b


_OPS: dict[str, Callable[[float, float], float | bool]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _div,
    "%": lambda a, b: math.fmod(a, b) if b else math.nan,
    "^": lambda a, b: a**b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}


def _counter_rate(samples: list[tuple[float, float]], window: float, now: float, func: str) -> float | None:
    """Prometheus' `extrapolatedRate` (and `irate` from the last two samples), counter resets included."""
    if len(samples) < 2:
        return None
    if func == "irate":
        (t0, v0), (t1, v1) = samples[-2], samples[-1]
        delta = v1 - v0 if v1 >= v0 else v1
        return delta / (t1 - t0) if t1 > t0 else None
    delta = samples[-1][1] - samples[0][1]
    for (_, previous), (_, current) in itertools.pairwise(samples):
        if current < previous:
            delta += previous
    first, last = samples[0][0], samples[-1][0]
    sampled = last - first
    if sampled <= 0:
        return None
    average = sampled / (len(samples) - 1)
    start_gap = first - (now - window)
    end_gap = now - last
    threshold = average * 1.1
    extrapolate_to = sampled
    extrapolate_to += start_gap if start_gap < threshold else average / 2
    extrapolate_to += end_gap if end_gap < threshold else average / 2
    increase = delta * (extrapolate_to / sampled)
    return increase if func == "increase" else increase / window


def _histogram_quantile(phi: float, vector: Vector) -> Vector:
    groups: dict[Labels, list[tuple[float, float]]] = defaultdict(list)
    for sample in vector:
        labels = dict(sample.labels)
        le = labels.pop("le", None)
        if le is None:
            continue
        labels.pop("__name__", None)
        groups[tuple(sorted(labels.items()))].append((float(le), sample.value))
    out: Vector = []
    for group, buckets in groups.items():
        buckets.sort()
        out.append(Sample(group, _bucket_quantile(phi, buckets)))
    return out


def _bucket_quantile(phi: float, buckets: list[tuple[float, float]]) -> float:
    if math.isnan(phi):
        return math.nan
    if phi < 0:
        return -math.inf
    if phi > 1:
        return math.inf
    if len(buckets) < 2 or not math.isinf(buckets[-1][0]):
        return math.nan
    total = buckets[-1][1]
    if total == 0:
        return math.nan
    rank = phi * total
    index = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    if index == len(buckets) - 1:
        return buckets[-2][0]
    if index == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    start, lower = (0.0, 0.0) if index == 0 else (buckets[index - 1][0], buckets[index - 1][1])
    end, count = buckets[index]
    return start + (end - start) * ((rank - lower) / (count - lower)) if count > lower else end
