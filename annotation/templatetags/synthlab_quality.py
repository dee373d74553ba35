"""Formatting for the quality pages. Every filter answers plain (unsafe) strings, so autoescaping
still applies to whatever data passes through."""

import json
import math

from django import template

register = template.Library()

STATISTIC_NAMES = {
    "krippendorff_alpha": "Krippendorff's α (ordinal)",
    "fleiss_kappa": "Fleiss' κ",
    "span_f1": "span F1",
    "exact_match": "exact match",
}


@register.filter
def num(value, digits=2):
    """Floats rounded, None as a dash, everything else unchanged."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        return f"{value:.{int(digits)}f}"
    return value


@register.filter
def pct(value):
    if value is None:
        return "—"
    return f"{value:.0%}"


@register.filter
def statistic_name(key):
    return STATISTIC_NAMES.get(key, key)


@register.filter
def sum_key(rows, key):
    return sum(row.get(key) or 0 for row in rows or [])


@register.filter
def as_json(value):
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@register.filter
def get_item(mapping, key):
    return (mapping or {}).get(key)
