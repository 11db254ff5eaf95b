"""Each test run, and each pytest-xdist worker of one, has its own id (config/settings/test.py),
and with it its own test database, files and queues, shared with the servers it starts."""

from config.settings import test as test_settings


def test_each_xdist_worker_is_a_run_whose_servers_and_workers_share_its_files_and_queues() -> None:
    run_id_for = test_settings.run_id_for
    assert run_id_for(None, 77, "") == "77"  # a run without xdist: its pid
    assert run_id_for("4242", 99, "gw0") == "4242gw0"  # workers of the run started as pid 4242
    assert run_id_for("4242", 98, "gw1") == "4242gw1"
    # The live server or Celery worker that gw0 starts inherits both, and is in gw0's run (it
    # used to add "gw0" again, and looked for gw0's files and tasks in a run of its own).
    assert run_id_for("4242gw0", 100, "gw0") == "4242gw0"
