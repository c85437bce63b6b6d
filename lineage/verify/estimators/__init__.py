"""Merge estimators: each recovers one family of mergekit merge methods from weights.

``MERGE_ESTIMATORS`` holds one estimator per family (``base.MergeEstimator``): ``linear``
(with task_arithmetic), ``slerp`` and ``ties`` (with dare_ties). The verifier fits every
estimator that ``tries`` a problem and never names a method itself.

Adding a method family (DELLA, breadcrumbs, ...) takes one new module here:

    # lineage/verify/estimators/della.py
    class DellaEstimator:
        methods = ("della", "della_linear")  # mergekit merge_method names; first is listed
        base_is_endpoint = False             # base_model is the Δ reference
        approximate = True                   # a fit of dropped entries is an estimate

        def tries(self, problem):            # MergeProblem -> bool
            return problem.base is not None and problem.declares(self)

        def fit(self, problem):              # -> MergeEstimate(method="della", ...)
            ...

        def recipe_problems(self, recipe, fit):  # DeclaredMerge, MergeEstimate -> [str]
            return [p for p in [method_problem(recipe, fit)] if p] or density_problems(...)

    register_estimator(DellaEstimator())

Every module of this package is imported when it loads, so the new file is all it takes.
"""

import importlib
import pkgutil

from lineage.verify.estimators import linear, slerp, ties  # noqa: F401  (first: in this order)
from lineage.verify.estimators.base import (
    DEFAULT_ESTIMATOR,
    MERGE_ESTIMATORS,
    MergeEstimator,
    MergeProblem,
    estimator_for,
    register_estimator,
)

__all__ = [
    "DEFAULT_ESTIMATOR",
    "MERGE_ESTIMATORS",
    "MergeEstimator",
    "MergeProblem",
    "estimator_for",
    "register_estimator",
]

# The built-in families are imported above in the order their fits are preferred on a tie;
# any other module here is a family added later and registers itself when imported.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
