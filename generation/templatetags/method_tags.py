from django import template

from ..method_stats import methods_panel

register = template.Library()


@register.inclusion_tag("generation/_methods_panel.html")
def methods_stats(project):
    """The methods panel (curator P/R, calibration, judge agreement) for the project page."""
    return {"project": project, "panel": methods_panel(project)}


@register.inclusion_tag("generation/_nearest_instructions.html")
def nearest_instructions(candidate):
    """Self-instruct: the nearest existing instructions and their ROUGE-L, beside a new one."""
    scores = getattr(candidate, "scores", None) or {}
    return {"nearest": scores.get("nearest") or [], "max_rouge_l": scores.get("max_rouge_l")}


@register.filter
def pct(value):
    return "—" if value is None else f"{value * 100:.0f}%"


@register.filter
def num(value):
    return "—" if value is None else f"{value:.2f}"
