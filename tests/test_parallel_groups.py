"""The suite's scheduling guard (``tests/collection_guard.py``): under ``--dist loadgroup`` every test module runs whole
on one worker, so its module fixtures are built once; a run where a group was split across workers fails. (With
pytest 9 and xdist 3.8 the groups were silently ignored and the study's ci-scale fixture was built twice.) The guard
itself runs at the end of every run of the suite; these tests check the rule it applies."""

from collection_guard import split_groups
from scheduling import HEAVY_FIRST, ONE_WORKER_PACKAGES


def test_a_group_on_one_worker_is_not_split():
    reports = [("tests/a.py::test_x@tests/a.py", "gw0"), ("tests/a.py::test_y@tests/a.py", "gw0")]
    assert split_groups(reports) == {}


def test_a_group_on_two_workers_is_named_with_its_workers():
    reports = [
        ("tests/a.py::test_x@tests/a.py", "gw0"),
        ("tests/a.py::test_y@tests/a.py", "gw1"),
        ("tests/b.py::test_z@tests/b.py", "gw1"),
        ("tests/conversion/test_c.py::test_1@conversion", "gw0"),
        ("tests/conversion/test_d.py::test_2@conversion", "gw1"),
    ]
    assert split_groups(reports) == {"conversion": ["gw0", "gw1"], "tests/a.py": ["gw0", "gw1"]}


def test_nodeids_without_a_group_suffix_are_grouped_by_module():
    """pytest 9 reports nodeids without xdist's ``@group``: a module split across workers is still caught."""
    reports = [("tests/a.py::test_x", "gw0"), ("tests/a.py::test_y[1]", "gw1"), ("tests/b.py::T::test_z", "gw0")]
    assert split_groups(reports) == {"tests/a.py": ["gw0", "gw1"]}


def test_the_heavy_first_groups_exist(request):
    """Every group handed out first names a test module or a one-worker package of the suite."""
    root = request.config.rootpath
    for group in HEAVY_FIRST:
        assert group in ONE_WORKER_PACKAGES or (root / group).is_file(), group
