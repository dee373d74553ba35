"""The quality dashboard (reviewers and admins): progress, agreement, annotators and charts that
update live, each chart's numbers as a table and as CSV, and the low-agreement item list."""

from django.http import Http404, HttpResponse
from django.shortcuts import render

from synthlab.errors import SynthLabError

from .. import charts, selectors, stats
from ..models import ReviewMode, Role
from .base import project_view


def _context(project) -> dict:
    numbers = stats.project_stats(project=project)
    agreement_rows = []
    for mode, row in numbers["agreement"].items():
        if row is None:
            continue
        statistic = next(
            k for k in ("krippendorff_alpha", "fleiss_kappa", "span_f1", "exact_match") if k in row
        )
        agreement_rows.append(
            {
                "mode": mode,
                "statistic": statistic,
                "value": row[statistic],
                "tasks": row["tasks"],
                "pairs": row.get("cohen_kappa") or [],
            }
        )
    return {
        "project": project,
        "is_admin": selectors.role_at_least(project.current_role, Role.ADMIN),
        "stats": numbers,
        "agreement_rows": agreement_rows,
        "charts": list(charts.dashboard_charts(numbers).values()),
        "pauses": stats.open_pauses(project),
    }


@project_view(min_role=Role.REVIEWER)
def dashboard(request, project):
    context = _context(project)
    if request.htmx and request.GET.get("partial") == "body":
        return render(request, "annotation/dashboard.html#body", context)
    return render(request, "annotation/dashboard.html", context)


@project_view(min_role=Role.REVIEWER)
def dashboard_csv(request, project, key):
    if key not in charts.CHART_KEYS:
        raise Http404("No such chart.")
    chart = charts.dashboard_charts(stats.project_stats(project=project))[key]
    response = HttpResponse(chart.csv(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-{key}.csv"'
    return response


@project_view(min_role=Role.REVIEWER)
def agreement_tasks(request, project):
    error = ""
    mode = request.GET.get("mode") or None
    below = stats.agreement_threshold(project)
    if mode and mode not in ReviewMode.values:
        error, mode = f"Mode is one of: {', '.join(ReviewMode.values)}.", None
    if request.GET.get("below"):
        try:
            below = float(request.GET["below"])
            if not 0 <= below <= 1:
                raise ValueError
        except ValueError:
            error, below = (
                "The threshold is a number from 0 to 1, e.g. 0.5.",
                stats.agreement_threshold(project),
            )
    try:
        rows = stats.low_agreement_tasks(project=project, below=below, mode=mode)
    except SynthLabError as exc:  # pragma: no cover - reads raise no app errors today
        rows, error = [], exc.message
    context = {
        "project": project,
        "rows": rows,
        "mode": mode or "",
        "below": below,
        "modes": project.modes,
        "error": error,
    }
    if request.htmx and request.GET.get("partial") == "rows":
        return render(request, "annotation/agreement_tasks.html#rows", context)
    return render(request, "annotation/agreement_tasks.html", context)
