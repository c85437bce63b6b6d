"""Merge estimators: each recovers one family of mergekit merge methods from weights.

``MERGE_ESTIMATORS`` holds one estimator per family (``base.MergeEstimator``): ``linear``
(with task_arithmetic), ``slerp`` and ``ties`` (with dare_ties). The verifier asks
``best_fit`` for a merge's recipe and the fit's estimator for its ``recipe_problems``; it
never names a method itself.

Adding a family (DELLA, breadcrumbs, ...) takes one new module in this package, which is
imported, and so registered, with the package:

    # lineage/verify/estimators/della.py
    from lineage.verify.estimators.base import (
        MergeProblem, density_problems, method_problem, register_estimator, weight_problems)
    from lineage.documents.verify import DeclaredMerge, MergeEstimate

    class DellaEstimator:
        methods = ("della", "della_linear")  # mergekit merge_method names; the first is listed
        base_is_endpoint = False             # base_model is the reference of the Δs
        approximate = True                   # dropped entries: the fit is an estimate

        def tries(self, problem: MergeProblem) -> bool:
            return problem.base is not None and problem.declares(self)

        def fit(self, problem: MergeProblem) -> MergeEstimate:
            ...  # MergeEstimate(method="della", coefficients=..., residual=..., density=...)

        def recipe_problems(self, recipe: DeclaredMerge, fit: MergeEstimate) -> list[str]:
            mismatch = method_problem(recipe, fit)
            if mismatch:
                return [mismatch]
            return weight_problems(recipe, fit, normalised=False) + density_problems(recipe, fit)

    register_estimator(DellaEstimator())
"""

import importlib
import pkgutil

from lineage.verify.estimators import linear, slerp, ties  # noqa: F401  (first: in this order)
from lineage.verify.estimators.base import (
    DEFAULT_ESTIMATOR,
    MERGE_ESTIMATORS,
    MergeEstimator,
    MergeProblem,
    best_fit,
    estimator_for,
    estimator_of,
    register_estimator,
)

__all__ = [
    "DEFAULT_ESTIMATOR",
    "MERGE_ESTIMATORS",
    "MergeEstimator",
    "MergeProblem",
    "best_fit",
    "estimator_for",
    "estimator_of",
    "register_estimator",
]

# The built-in families are imported above in the order their fits are preferred on a tie;
# any other module here is a family added later and registers itself when imported.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
