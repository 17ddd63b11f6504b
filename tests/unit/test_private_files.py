import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pgkura.private_files import write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_owner_only_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_private(tmp_path / "replication.password", "secret\n")
    finally:
        os.umask(old)
    assert mode(tmp_path / "replication.password") == 0o600
    assert (tmp_path / "replication.password").read_text() == "secret\n"


def test_an_existing_file_is_replaced_whole_and_only_it_remains(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old and much longer than the new text")
    target.chmod(0o644)
    before = target.stat().st_ino
    write_private(target, b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_ino != before  # renamed over it, not rewritten in place
    assert mode(target) == 0o600
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_wider_mode_is_given_to_what_others_must_read(tmp_path: Path) -> None:
    write_private(tmp_path / "ca.crt", b"certificate", mode=0o644)
    assert mode(tmp_path / "ca.crt") == 0o644


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_write_that_fails_half_way_leaves_the_old_file_and_no_temporary(
    tmp_path: Path,
) -> None:
    """The file size limit makes the kernel refuse the write part of the way through (EFBIG),
    as a full disk would."""
    target = tmp_path / "manifest.json"
    target.write_text("the old manifest")
    script = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from pgkura.private_files import write_private\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        "    write_private(Path(sys.argv[1]), b'x' * 65536)\n"
        "except OSError as exc:\n"
        "    print(exc.errno)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(target)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == str(errno.EFBIG), done.stderr
    assert target.read_text() == "the old manifest"
    assert os.listdir(tmp_path) == ["manifest.json"]


def test_a_failed_rename_removes_the_temporary(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(IsADirectoryError):
        write_private(tmp_path / "taken", b"data")
    assert os.listdir(tmp_path) == ["taken"]
