"""The Ray executor on a local Ray (CPU): it resumes a half-finished store and records errors without stopping the
other runs (equal records to the local executor on real ci runs: ``test_reproduce_recipe.py``)."""

import pytest
from study_helpers import fake_run, sometimes_failing_run

from hf_robattr.study import RunStore, arm_specs, get_settings, run_jobs
from hf_robattr.study.run import comparable


ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    import study_helpers
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(study_helpers)  # Ray workers do not have tests/ on their path
    ray.init(num_cpus=2, include_dashboard=False, logging_level="error", configure_logging=False)
    yield
    ray.shutdown()


def test_ray_resumes_a_half_finished_store_and_records_errors(tmp_path, local_ray):
    protocol, grid = get_settings("ci").arm("vit")
    specs = arm_specs(protocol, grid)
    store = RunStore(tmp_path, "ci")
    run_jobs([(s, None) for s in specs[:3]], store, run_function=fake_run, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.json")}
    pending = [s for s in specs if not store.is_finished(s.key, s.fingerprint)]
    counts = run_jobs(
        [(s, None) for s in pending],
        store,
        executor="ray",
        threads_per_worker=1,
        run_function=sometimes_failing_run,
        progress=False,
    )
    failed = [s for s in pending if s.seed == 1]
    assert counts["error"] == len(failed) > 0 and counts["ok"] == len(pending) - len(failed)
    assert all((tmp_path / "runs" / name).stat().st_mtime_ns == stamp for name, stamp in stamps.items())
    for spec in pending:
        record = store.load(spec.key)
        assert record["status"] == ("error" if spec.seed == 1 else "ok")
        assert comparable(record) == comparable(fake_run(spec)) or spec.seed == 1
