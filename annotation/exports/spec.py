"""What an export asks for: format, file type, filters and options, checked before anything runs.

Bad input raises ValidationFailed naming the field and what to send instead; nothing is stored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from synthlab.errors import ValidationFailed

from ..models import Membership, Project, TaskType

FILE_TYPES = ("jsonl", "parquet", "hf")
ARCHIVES = ("zip", "tar")
PAIR_RULES = ("compare", "rating", "edit")
RATING_PAIRS = ("best_worst", "best_random")
RATING_AGREEMENT = ("spread", "alpha")

FILTER_KEYS = (
    "completed_only",
    "min_agreement",
    "min_rating",
    "split",
    "annotators",
    "date_from",
    "date_to",
    "models",
    "recipes",
)
OPTION_KEYS = (
    "bare",
    "archive",
    "rules",
    "rating_pairs",
    "min_rating_gap",
    "min_vote_margin",
    "kto_desirable_min",
    "kto_undesirable_max",
    "rating_agreement",
    "seed",
    "rationales",
)


@dataclass(frozen=True)
class ExportSpec:
    format: str
    file_type: str
    # Cleaned, JSON-ready values as stored on the Export.
    filters: dict
    options: dict
    # Resolved for the queries.
    annotator_ids: tuple[int, ...] | None = None
    date_from: dt.datetime | None = None
    date_to: dt.datetime | None = None  # exclusive
    ner: bool = False

    def option(self, key: str, default=None):
        value = self.options.get(key)
        return default if value is None else value

    def filter(self, key: str, default=None):
        value = self.filters.get(key)
        return default if value is None else value


def _number(details, where, key, value, *, low, high, integer=False):
    if value is None or value == "":
        return None
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or not low <= number <= high:
        kind = "a whole number" if integer else "a number"
        details.append({"field": f"{where}.{key}", "message": f"{key} must be {kind} from {low} to {high}."})
        return None
    return number


def _bool(details, where, key, value, default):
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return value.lower() in ("true", "1", "yes", "on")
    details.append({"field": f"{where}.{key}", "message": f"{key} must be true or false."})
    return default


def _strings(details, where, key, value):
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        details.append({"field": f"{where}.{key}", "message": f"{key} must be a list of strings."})
        return None
    return sorted(set(value))


def _moment(details, key, value, *, end: bool):
    """An ISO date or datetime; a bare date_to covers that whole day."""
    if value is None or value == "":
        return None, None
    if isinstance(value, dt.datetime | dt.date):
        value = value.isoformat()
    if not isinstance(value, str):
        value = ""
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            details.append(
                {"field": f"filters.{key}", "message": f"{key} must be an ISO date like 2026-01-31."}
            )
            return None, None
        parsed = dt.datetime.combine(day + dt.timedelta(days=1) if end else day, dt.time.min)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, dt.UTC)
    return value, parsed


def export_spec_validate(
    *, project: Project, format: str, file_type: str, filters: dict | None, options: dict | None
) -> ExportSpec:
    from .rows import FORMATS

    details: list[dict] = []
    filters = {} if filters is None else filters
    options = {} if options is None else options
    if format not in FORMATS:
        details.append({"field": "format", "message": f"Choose a format from: {', '.join(FORMATS)}."})
    if file_type not in FILE_TYPES:
        details.append(
            {"field": "file_type", "message": f"Choose a file type from: {', '.join(FILE_TYPES)}."}
        )
    for where, given, allowed in (("filters", filters, FILTER_KEYS), ("options", options, OPTION_KEYS)):
        if not isinstance(given, dict):
            details.append({"field": where, "message": f"{where} must be an object."})
            continue
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            details.append(
                {
                    "field": f"{where}.{unknown[0]}",
                    "message": f"Unknown {where[:-1]} {unknown[0]!r}; known: {', '.join(allowed)}.",
                }
            )
    if details:
        raise ValidationFailed(details[0]["message"], details=details)

    fmt = FORMATS[format]
    ner = project.task_type == TaskType.NER
    if fmt.task_types and project.task_type not in fmt.task_types:
        kinds = " or ".join(fmt.task_types)
        details.append(
            {
                "field": "format",
                "message": f"The {format} format needs a {kinds} project; this one is {project.task_type}.",
            }
        )

    clean_filters: dict = {
        "completed_only": _bool(details, "filters", "completed_only", filters.get("completed_only"), True)
    }
    clean_filters["min_agreement"] = _number(
        details, "filters", "min_agreement", filters.get("min_agreement"), low=-1.0, high=1.0
    )
    clean_filters["min_rating"] = _number(
        details, "filters", "min_rating", filters.get("min_rating"), low=1, high=5
    )
    split = filters.get("split") or ("eval" if format == "eval" else "train")
    if format == "eval" and split != "eval":
        details.append({"field": "filters.split", "message": "The eval format reads the eval split only."})
    elif format != "eval" and split != "train":
        details.append(
            {
                "field": "filters.split",
                "message": f"Training formats read the train split only (eval items never go into training "
                f"data); use the eval format for split {split!r}.",
            }
        )
    clean_filters["split"] = split
    annotators = _strings(details, "filters", "annotators", filters.get("annotators"))
    annotator_ids = None
    if annotators:
        users = dict(
            get_user_model()
            .objects.filter(username__in=annotators, memberships__project=project)
            .values_list("username", "pk")
        )
        missing = [name for name in annotators if name not in users]
        if missing:
            details.append(
                {
                    "field": "filters.annotators",
                    "message": f"{missing[0]!r} is not a member of this project; choose from its members.",
                }
            )
        annotator_ids = tuple(sorted(users.values()))
    clean_filters["annotators"] = annotators
    clean_filters["date_from"], date_from = _moment(details, "date_from", filters.get("date_from"), end=False)
    clean_filters["date_to"], date_to = _moment(details, "date_to", filters.get("date_to"), end=True)
    if date_from and date_to and date_from >= date_to:
        details.append({"field": "filters.date_to", "message": "date_to must be after date_from."})
    clean_filters["models"] = _strings(details, "filters", "models", filters.get("models"))
    clean_filters["recipes"] = _strings(details, "filters", "recipes", filters.get("recipes"))

    clean_options: dict = {"bare": _bool(details, "options", "bare", options.get("bare"), False)}
    archive = options.get("archive") or "zip"
    if archive not in ARCHIVES:
        details.append({"field": "options.archive", "message": "archive must be zip or tar."})
    clean_options["archive"] = archive if file_type == "hf" else None
    if fmt.pairs:
        rules = options.get("rules") or list(PAIR_RULES)
        if isinstance(rules, str):
            rules = [r.strip() for r in rules.split(",") if r.strip()]
        if not isinstance(rules, list) or not rules or set(rules) - set(PAIR_RULES):
            details.append(
                {"field": "options.rules", "message": f"rules is a list from: {', '.join(PAIR_RULES)}."}
            )
            rules = list(PAIR_RULES)
        clean_options["rules"] = [r for r in PAIR_RULES if r in rules]
        rating_pairs = options.get("rating_pairs") or "best_worst"
        if rating_pairs not in RATING_PAIRS:
            details.append(
                {
                    "field": "options.rating_pairs",
                    "message": f"rating_pairs is one of: {', '.join(RATING_PAIRS)}.",
                }
            )
        clean_options["rating_pairs"] = rating_pairs
        clean_options["min_rating_gap"] = _number(
            details, "options", "min_rating_gap", options.get("min_rating_gap", 1), low=0, high=4
        )
    if fmt.pairs or format == "kto":
        clean_options["min_vote_margin"] = _number(
            details,
            "options",
            "min_vote_margin",
            options.get("min_vote_margin", 1),
            low=1,
            high=50,
            integer=True,
        )
    if format == "kto":
        clean_options["kto_desirable_min"] = _number(
            details, "options", "kto_desirable_min", options.get("kto_desirable_min", 4), low=1, high=5
        )
        clean_options["kto_undesirable_max"] = _number(
            details, "options", "kto_undesirable_max", options.get("kto_undesirable_max", 2), low=1, high=5
        )
        if (clean_options["kto_undesirable_max"] or 0) >= (clean_options["kto_desirable_min"] or 6):
            details.append(
                {
                    "field": "options.kto_undesirable_max",
                    "message": "kto_undesirable_max must be below kto_desirable_min.",
                }
            )
    agreement = options.get("rating_agreement") or "spread"
    if agreement not in RATING_AGREEMENT:
        details.append(
            {"field": "options.rating_agreement", "message": "rating_agreement is spread or alpha."}
        )
    clean_options["rating_agreement"] = agreement
    if options.get("rationales") not in (None, ""):
        if format != "labels" or ner:
            details.append(
                {
                    "field": "options.rationales",
                    "message": "rationales applies to the labels format of a classification project.",
                }
            )
        clean_options["rationales"] = _bool(details, "options", "rationales", options.get("rationales"), None)
    clean_options["seed"] = _number(
        details, "options", "seed", options.get("seed", 0), low=0, high=2**31, integer=True
    )
    if details:
        raise ValidationFailed(details[0]["message"], details=details)
    return ExportSpec(
        format=format,
        file_type=file_type,
        filters={k: v for k, v in clean_filters.items() if v is not None},
        options={k: v for k, v in clean_options.items() if v is not None},
        annotator_ids=annotator_ids,
        date_from=date_from,
        date_to=date_to,
        ner=ner,
    )


def export_spec_from(export) -> ExportSpec:
    """The spec of a stored export (re-resolved, so a rerun reads the same filters)."""
    return export_spec_validate(
        project=export.project,
        format=export.format,
        file_type=export.file_type,
        filters=export.filters,
        options=export.options,
    )


def member_usernames(project: Project) -> list[str]:
    return list(
        Membership.objects.filter(project=project)
        .order_by("user__username")
        .values_list("user__username", flat=True)
    )
