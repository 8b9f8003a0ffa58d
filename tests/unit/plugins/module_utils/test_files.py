# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""files.py on a real filesystem: modes, atomicity, backups, no stray temp files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils import files


def _mode(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def _leftovers(directory):
    return [name for name in os.listdir(str(directory)) if name.endswith(".tmp")]


@pytest.fixture
def loose_umask():
    previous = os.umask(0)
    yield
    os.umask(previous)


@pytest.fixture
def tight_umask():
    previous = os.umask(0o077)
    yield
    os.umask(previous)


def test_key_is_0600_and_cert_0644_whatever_the_umask(tmp_path, loose_umask):
    key = tmp_path / "k.key"
    cert = tmp_path / "c.crt"
    assert files.atomic_write(str(key), b"KEY", files.KEY_MODE).changed
    assert files.atomic_write(str(cert), b"CERT", files.CERT_MODE).changed
    assert _mode(key) == 0o600 and _mode(cert) == 0o644
    assert key.read_bytes() == b"KEY"


def test_cert_mode_is_not_narrowed_by_a_tight_umask(tmp_path, tight_umask):
    cert = tmp_path / "c.crt"
    files.atomic_write(str(cert), b"CERT", 0o644)
    assert _mode(cert) == 0o644


def test_identical_content_is_not_rewritten(tmp_path):
    path = tmp_path / "c.crt"
    files.atomic_write(str(path), b"same", 0o644)
    inode = os.stat(str(path)).st_ino
    result = files.atomic_write(str(path), b"same", 0o644, backup=True)
    assert not result.changed and result.backup_path is None
    assert os.stat(str(path)).st_ino == inode
    assert sorted(os.listdir(str(tmp_path))) == ["c.crt"]


def test_a_mode_change_alone_is_a_change(tmp_path):
    path = tmp_path / "k.key"
    files.atomic_write(str(path), b"key", 0o644)
    assert files.atomic_write(str(path), b"key", 0o600).changed
    assert _mode(path) == 0o600


def test_replacement_is_a_rename_not_an_in_place_write(tmp_path):
    path = tmp_path / "c.crt"
    files.atomic_write(str(path), b"old", 0o644)
    with open(str(path), "rb") as reader:  # a reader holding the old file keeps seeing it whole
        files.atomic_write(str(path), b"new content", 0o644)
        assert reader.read() == b"old"
    assert path.read_bytes() == b"new content"


def test_backup_keeps_the_old_content_and_key_backups_are_0600(tmp_path, loose_umask):
    path = tmp_path / "ca.key"
    files.atomic_write(str(path), b"old key", 0o600)
    result = files.atomic_write(str(path), b"new key", 0o600, backup=True, backup_mode=files.KEY_MODE)
    assert result.changed and result.backup_path
    assert result.backup_path.startswith(str(path) + ".") and result.backup_path.endswith("~")
    with open(result.backup_path, "rb") as handle:
        assert handle.read() == b"old key"
    assert _mode(result.backup_path) == 0o600
    assert path.read_bytes() == b"new key"


def test_no_backup_when_there_was_nothing_to_replace(tmp_path):
    result = files.atomic_write(str(tmp_path / "new.crt"), b"x", 0o644, backup=True)
    assert result.changed and result.backup_path is None


def test_failed_rename_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "c.crt"
    files.atomic_write(str(path), b"old", 0o644)

    def broken_rename(source, destination):
        raise OSError(28, "No space left on device", destination)

    monkeypatch.setattr(os, "rename", broken_rename)
    with pytest.raises(files.FileError) as caught:
        files.atomic_write(str(path), b"new", 0o644)
    assert str(path) in str(caught.value)
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_failed_write_midway_leaves_no_temp_file(tmp_path, monkeypatch):
    calls = {"n": 0}
    real_write = os.write

    def failing_write(descriptor, data):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(5, "Input/output error")
        return real_write(descriptor, data)

    batch = files.AtomicBatch()
    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(files.FileError):
        for index in range(5):
            batch.stage(str(tmp_path / ("f%d" % index)), b"data", 0o644)
    monkeypatch.undo()
    assert os.listdir(str(tmp_path)) == []


def test_missing_directory_is_a_clear_error_naming_the_path(tmp_path):
    target = tmp_path / "nope" / "c.crt"
    with pytest.raises(files.FileError) as caught:
        files.check_writable(str(target), "cert_path")
    assert str(tmp_path / "nope") in str(caught.value) and str(caught.value).startswith("cert_path ")
    with pytest.raises(files.FileError) as caught:
        files.atomic_write(str(target), b"x", 0o644, field="cert_path")
    assert "nope" in str(caught.value)


def test_a_file_in_place_of_the_directory_is_refused(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")
    with pytest.raises(files.FileError) as caught:
        files.check_writable(str(blocker / "c.crt"), "key_path")
    assert caught.value.field == "key_path"
    with pytest.raises(files.FileError):
        files.check_writable(str(tmp_path), "key_path")  # a directory is not a file path


def test_check_writable_probes_and_leaves_nothing(tmp_path):
    files.check_writable(str(tmp_path / "c.crt"), "cert_path")
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs sysfs, where even root cannot create files")
def test_a_directory_that_refuses_new_files_is_caught_before_writing():
    # access() says root may write anywhere; sysfs still refuses regular files.
    with pytest.raises(files.FileError) as caught:
        files.check_writable("/sys/kernel/mtls-unit.crt", "cert_path")
    assert str(caught.value).startswith("cert_path directory /sys/kernel does not accept new files")


def test_batch_of_many_files_commits_all_and_leaves_no_temp(tmp_path):
    batch = files.AtomicBatch()
    for index in range(40):  # above the threshold where one syncfs replaces per-file fsync
        assert batch.stage(str(tmp_path / ("%d.key" % index)), b"k%d" % index, 0o600)
    assert len(_leftovers(tmp_path)) == 40 and not (tmp_path / "0.key").exists()  # nothing visible yet
    batch.commit()
    assert _leftovers(tmp_path) == []
    assert all((tmp_path / ("%d.key" % i)).read_bytes() == b"k%d" % i for i in range(40))
    assert all(_mode(tmp_path / ("%d.key" % i)) == 0o600 for i in range(40))


def test_context_manager_aborts_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with files.AtomicBatch() as batch:
            batch.stage(str(tmp_path / "a"), b"a", 0o644)
            raise RuntimeError("validation failed later")
    assert os.listdir(str(tmp_path)) == []


def test_remove_with_backup(tmp_path):
    path = tmp_path / "ca.key"
    files.atomic_write(str(path), b"secret", 0o600)
    result = files.remove(str(path), backup=True, backup_mode=files.KEY_MODE)
    assert result.changed and not path.exists()
    assert _mode(result.backup_path) == 0o600
    assert not files.remove(str(path)).changed


@pytest.mark.parametrize("value, expected", [(None, 0o644), ("0600", 0o600), ("600", 0o600), (0o640, 0o640)])
def test_parse_mode(value, expected):
    assert files.parse_mode(value, 0o644) == expected


@pytest.mark.parametrize("value", ["rw-r--r--", "99999", "0800"])
def test_parse_mode_rejects(value):
    with pytest.raises(files.FileError) as caught:
        files.parse_mode(value, 0o644, "mode")
    assert caught.value.field == "mode" and str(caught.value).startswith("mode ")
