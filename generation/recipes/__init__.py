"""The recipe registry: name -> Recipe instance. See recipes/base.py for how to add one."""

from synthlab.errors import ValidationFailed

from .base import Draft, Failure, ItemResult, Recipe, RecipeContext
from .candidates import CandidatesRecipe
from .weak_label import WeakLabelRecipe

RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (WeakLabelRecipe(), CandidatesRecipe())}

# The methods from the literature (generation/methods/, one recipe module each).
from .backtranslation import BacktranslationRecipe  # noqa: E402
from .critique_revise import CritiqueReviseRecipe  # noqa: E402
from .judge import JudgeRecipe  # noqa: E402
from .qa_from_document import QaFromDocumentRecipe  # noqa: E402
from .rationale import RationaleRecipe  # noqa: E402
from .self_consistency import SelfConsistencyRecipe  # noqa: E402
from .self_instruct import SelfInstructRecipe  # noqa: E402
from .sycophancy import SycophancyRecipe  # noqa: E402

for _recipe in (
    SelfInstructRecipe(),
    BacktranslationRecipe(),
    SelfConsistencyRecipe(),
    CritiqueReviseRecipe(),
    QaFromDocumentRecipe(),
    RationaleRecipe(),
    SycophancyRecipe(),
    JudgeRecipe(),
):
    RECIPES[_recipe.name] = _recipe

# Named in the API contract; they plug in here once written.
PLANNED = (
    "self_instruct",
    "backtranslation",
    "self_consistency",
    "critique_revise",
    "qa_from_document",
    "rationale",
    "sycophancy",
    "judge",
)

__all__ = ["RECIPES", "Draft", "Failure", "ItemResult", "Recipe", "RecipeContext", "recipe_get"]


def recipe_get(name: str) -> Recipe:
    recipe = RECIPES.get(str(name or ""))
    if recipe is None:
        if name in PLANNED:
            message = f'The recipe "{name}" is not available in this version yet.'
        else:
            message = f'Unknown recipe "{name}"; choose one of: {", ".join(RECIPES)}.'
        raise ValidationFailed(message, details=[{"field": "recipe", "message": message}])
    return recipe
