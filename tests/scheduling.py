"""How the suite is shared out over xdist workers (``tests/conftest.py`` applies it, ``tests/collection_guard.py``
checks it)."""

# Packages whose session-scoped fixtures are expensive: all their modules run on one worker, so they are built once.
ONE_WORKER_PACKAGES = ("demo", "conversion")

# The costliest groups (CPU seconds on 2 idle cores, docs/development.md), handed out first: with the longest jobs
# started first (pyproject passes --no-loadscope-reorder, so xdist keeps this order) the other worker fills in
# around them. xdist's own order (most tests first) started the ci-scale study last and left one core idle at the end.
HEAVY_FIRST = (
    "tests/study/test_reproduce_recipe.py",
    "tests/benchmarks/test_gpu_check.py",
    "conversion",
    "tests/recipes/test_recipes.py",
    "tests/study/test_store_and_executors.py",
    "tests/metrics/test_loading.py",
    "demo",
)
