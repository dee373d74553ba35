"""The deterministic parts of the methods from the literature, as pure functions.

One module per method. Nothing here touches the database or a model: the recipes in
`generation.recipes` build prompts with these functions, call a backend, and hand the raw output
back here to be parsed, filtered and scored. Parameters named in /work/shared/methods.md are
module-level `DEFAULTS` with the paper's value; a recipe's `params` override them.

A parser never guesses: output it cannot read raises `ParseError`, which carries the raw text so the
recipe can record it as a failure.
"""


class ParseError(ValueError):
    """Model output that does not follow the format the prompt asked for."""

    def __init__(self, message: str, *, raw: str):
        super().__init__(message)
        self.message = message
        self.raw = raw


def params_merge(defaults: dict, params: dict | None) -> dict:
    """The defaults overridden by the keys of `params` that the method knows; unknown keys are an
    error, so a typo in a job's parameters is reported instead of silently ignored."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"Unknown parameter(s): {', '.join(unknown)}. Known: {', '.join(sorted(defaults))}.")
    merged = dict(defaults)
    for key, value in params.items():
        default = defaults[key]
        if default is not None and value is not None and not isinstance(value, type(default)):
            # ints are accepted where floats are expected (a threshold of 1 means 1.0)
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            else:
                raise ValueError(
                    f"Parameter {key!r} must be {type(default).__name__}, not {type(value).__name__}."
                )
        merged[key] = value
    return merged
