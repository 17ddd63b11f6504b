"""Who else uses the old data, decided from `docker inspect` output and postmaster.pid."""

import os

import pytest

from pgkura.engines.docker.data_in_use import Lock, lock_problem, mounters

VOLUME_DIR = "/var/lib/docker/volumes/old/_data"


def container(name, state="running", mounts=(), labels=None):
    return {"Name": f"/{name}", "State": {"Status": state},
            "Config": {"Labels": labels}, "Mounts": list(mounts)}  # fmt: skip


def volume(name="old", rw=True):
    return {"Type": "volume", "Name": name, "Source": f"/var/lib/docker/volumes/{name}/_data",
            "Destination": "/var/lib/postgresql/data", "RW": rw}  # fmt: skip


def bind(source, rw=True):
    return {"Type": "bind", "Source": source, "Destination": "/data", "RW": rw}


def found(containers, **kw):
    kw = {"volume": "old", "path": VOLUME_DIR, "ignore": {}} | kw
    return [(m.name, m.state, m.mount) for m in mounters(containers, **kw)]


@pytest.mark.parametrize("state", ["running", "paused", "restarting"])
def test_a_running_or_paused_container_of_any_project_on_the_volume_is_a_user(state):
    mine = container("users-own-pg", state, [volume()])
    assert found([mine]) == [("users-own-pg", state, "old")]


@pytest.mark.parametrize("state", ["exited", "created", "dead"])
def test_a_stopped_container_runs_no_server(state):
    assert found([container("stopped", state, [volume()])]) == []


def test_other_volumes_read_only_mounts_and_this_upgrades_helpers_do_not_count():
    helper = container("pgkura-upgrade-old-p", mounts=[volume()],
                       labels={"pgkura.upgrade": "p"})  # fmt: skip
    other_upgrade = container("pgkura-upgrade-old-q", mounts=[volume()],
                              labels={"pgkura.upgrade": "q"})  # fmt: skip
    everything = [
        container("elsewhere", mounts=[volume("new")]),
        container("backup-agent", mounts=[volume(rw=False)]),
        container("monitor", mounts=[bind("/", rw=False)]),
        helper,
        other_upgrade,
    ]
    assert found(everything, ignore={"pgkura.upgrade": "p"}) == [
        ("pgkura-upgrade-old-q", "running", "old")
    ]


def test_a_bind_mount_of_the_volumes_files_or_of_a_directory_around_them_counts():
    assert found([container("a", mounts=[bind(VOLUME_DIR + "/")])])[0][2] == VOLUME_DIR + "/"
    assert found([container("b", mounts=[bind("/var/lib/docker")])])[0][0] == "b"
    assert found([container("c", mounts=[bind(VOLUME_DIR + "/data")])])[0][0] == "c"
    assert found([container("d", mounts=[bind("/var/lib/docker/volumes/old2")])]) == []


def test_a_host_directory_is_matched_by_path_only():
    pgdata = container("pg", mounts=[bind("/srv/app/pgdata")])
    assert found([pgdata], volume="", path="/srv/app/pgdata") == [
        ("pg", "running", "/srv/app/pgdata")
    ]
    assert found([pgdata], volume="", path="/srv/app/pgdata2") == []
    assert found([container("v", mounts=[volume()])], volume="", path="/srv/app/pgdata") == []


def test_no_lock_no_problem():
    assert lock_problem(None, "/srv/pgdata", "/srv/pgdata") is None


def test_a_live_server_on_this_machine_is_named_with_its_pid():
    said = lock_problem(Lock(os.getpid(), "/srv/pgdata/"), "/srv/pgdata", "/srv/pgdata")
    assert said is not None
    assert f"a PostgreSQL server on this machine (PID {os.getpid()}) runs on /srv/pgdata" in said
    assert "pg_ctl stop -D /srv/pgdata" in said


@pytest.mark.parametrize(
    "lock",
    [
        Lock(1, "/var/lib/postgresql/data"),  # a container's server: its PID 1 is not ours
        Lock(os.getpid(), "/elsewhere"),  # a live process, but not on these files
        Lock(0, ""),  # unreadable
    ],
)
def test_a_lock_left_over_is_said_to_be_one(lock):
    said = lock_problem(lock, "/srv/pgdata", "old (data/)")
    assert said is not None
    assert said.startswith("old (data/) holds a postmaster.pid")
    assert "did not shut down cleanly" in said
