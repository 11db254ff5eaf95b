"""The kept migrated copies of the test database (tests.migrated_database)."""

from tests.migrated_database import COPIES_KEPT, copies_stale


def test_it_keeps_other_checkouts_copies_and_removes_only_the_oldest() -> None:
    newest_first = ["other-5", "other-4", "mine", "other-3", "other-2", "other-1"]
    assert COPIES_KEPT == 4
    # Its own copy and the three newest others stay: a second checkout on the same server no
    # longer makes this one migrate afresh.
    assert copies_stale(newest_first, "mine") == ["other-2", "other-1"]
    assert copies_stale(["other-1"], "mine") == []
    assert copies_stale(["mine"], "mine") == []
