# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""files.VersionedBatch on a real filesystem: kubelet's AtomicWriter layout.

Every test reads the directory the way a consumer does - through the visible names -
and checks that a certificate and its key always come from the same commit.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import shutil
import stat
import subprocess
import sys

import pytest

from ansible_collections.zerotrust.mtls.plugins.module_utils import files


def _mode(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def _versions(directory):
    return sorted(name for name in os.listdir(str(directory)) if name.startswith("..") and name != files.DATA_LINK)


def _visible(directory):
    """{name: bytes} of every visible (non-hidden) name, read through its symlink."""
    result = {}
    for name in sorted(os.listdir(str(directory))):
        if not name.startswith("."):
            with open(os.path.join(str(directory), name), "rb") as handle:
                result[name] = handle.read()
    return result


def _commit(directory, contents, modes=None, backup=False):
    batch = files.VersionedBatch(str(directory))
    changed = []
    for name, content in sorted(contents.items()):
        mode = (modes or {}).get(name, files.KEY_MODE if name.endswith(".key") else files.CERT_MODE)
        if batch.stage(os.path.join(str(directory), name), content, mode, backup=backup, backup_mode=files.KEY_MODE if name.endswith(".key") else None):
            changed.append(name)
    return changed, batch.commit()


def _generation(n, names=("a", "b")):
    contents = {}
    for name in names:
        contents[name + ".crt"] = b"cert %s gen %d\n" % (name.encode(), n)
        contents[name + ".key"] = b"key %s gen %d\n" % (name.encode(), n)
    return contents


def _assert_consistent(directory, allowed):
    """Every visible pair comes from one generation among ``allowed`` (all names present)."""
    seen = _visible(directory)
    for generation in allowed:
        if seen == _generation(generation):
            return generation
    raise AssertionError("a mix of generations is visible: %r" % seen)


def test_first_commit_makes_the_layout(tmp_path):
    changed, backups = _commit(tmp_path, _generation(1))
    assert changed == ["a.crt", "a.key", "b.crt", "b.key"]
    assert all(value is None for value in backups.values())
    assert os.readlink(str(tmp_path / "..data")) == _versions(tmp_path)[0]
    for name in changed:
        assert os.readlink(str(tmp_path / name)) == "..data/" + name
        assert files.is_versioned_link(str(tmp_path / name))
    assert _visible(tmp_path) == _generation(1)
    assert _mode(tmp_path / "a.key") == 0o600 and _mode(tmp_path / "a.crt") == 0o644
    assert len(_versions(tmp_path)) == 1
    assert [n for n in os.listdir(str(tmp_path)) if n.endswith(".tmp")] == []


def test_a_new_commit_switches_every_file_and_removes_the_old_version(tmp_path):
    _commit(tmp_path, _generation(1))
    first = _versions(tmp_path)
    links = dict((name, os.lstat(str(tmp_path / name)).st_ino) for name in _generation(1))
    with open(str(tmp_path / "a.key"), "rb") as reader:  # a reader of the old key keeps it whole
        _commit(tmp_path, _generation(2))
        assert reader.read() == b"key a gen 1\n"
    assert _visible(tmp_path) == _generation(2)
    assert _versions(tmp_path) != first and len(_versions(tmp_path)) == 1
    # The visible symlinks themselves never change.
    assert links == dict((name, os.lstat(str(tmp_path / name)).st_ino) for name in _generation(1))


def test_unchanged_files_are_hard_linked_into_the_new_version(tmp_path):
    _commit(tmp_path, _generation(1))
    inode = os.stat(str(tmp_path / "b.key")).st_ino
    batch = files.VersionedBatch(str(tmp_path))
    assert batch.stage(str(tmp_path / "a.crt"), b"new a cert", files.CERT_MODE)
    assert batch.stage(str(tmp_path / "a.key"), b"new a key", files.KEY_MODE)
    batch.commit()
    assert os.stat(str(tmp_path / "b.key")).st_ino == inode
    assert _visible(tmp_path)["a.key"] == b"new a key" and _visible(tmp_path)["b.key"] == b"key b gen 1\n"
    assert _mode(tmp_path / "b.key") == 0o600


def test_link_failure_falls_back_to_a_copy_with_the_same_mode(tmp_path, monkeypatch):
    _commit(tmp_path, _generation(1))

    def no_links(source, target, *args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted", source)

    monkeypatch.setattr(os, "link", no_links)
    batch = files.VersionedBatch(str(tmp_path))
    batch.stage(str(tmp_path / "a.crt"), b"new a cert", files.CERT_MODE)
    batch.commit()
    monkeypatch.undo()
    assert _visible(tmp_path)["b.key"] == b"key b gen 1\n" and _mode(tmp_path / "b.key") == 0o600


def test_no_change_writes_nothing_and_keeps_the_version(tmp_path):
    _commit(tmp_path, _generation(1))
    before = _versions(tmp_path)
    stamp = os.stat(str(tmp_path / before[0])).st_mtime_ns
    changed, backups = _commit(tmp_path, _generation(1), backup=True)
    assert changed == [] and backups == {}
    assert _versions(tmp_path) == before and os.stat(str(tmp_path / before[0])).st_mtime_ns == stamp


def test_a_mode_change_alone_is_a_new_version(tmp_path):
    _commit(tmp_path, _generation(1))
    changed, _backups = _commit(tmp_path, _generation(1), modes={"a.crt": 0o640})
    assert changed == ["a.crt"]
    assert _mode(tmp_path / "a.crt") == 0o640 and _mode(tmp_path / "b.crt") == 0o644


def test_backups_are_plain_files_beside_the_names(tmp_path):
    _commit(tmp_path, _generation(1))
    _changed, backups = _commit(tmp_path, _generation(2), backup=True)
    key_backup = backups[str(tmp_path / "a.key")]
    assert key_backup.startswith(str(tmp_path / "a.key") + ".") and key_backup.endswith("~")
    assert not os.path.islink(key_backup) and os.path.dirname(key_backup) == str(tmp_path)
    with open(key_backup, "rb") as handle:
        assert handle.read() == b"key a gen 1\n"
    assert _mode(key_backup) == 0o600
    assert len([name for name in os.listdir(str(tmp_path)) if name.endswith("~")]) == 4


def test_files_of_names_not_staged_survive_a_commit(tmp_path):
    _commit(tmp_path, _generation(1, names=("a", "b", "c")))
    _commit(tmp_path, {"a.crt": b"x", "a.key": b"y"})
    assert _visible(tmp_path)["c.key"] == b"key c gen 1\n"
    assert sorted(_visible(tmp_path)) == ["a.crt", "a.key", "b.crt", "b.key", "c.crt", "c.key"]


def test_migration_from_plain_files_without_changing_bytes(tmp_path):
    for name, content in _generation(1).items():
        files.atomic_write(str(tmp_path / name), content, files.KEY_MODE if name.endswith(".key") else files.CERT_MODE)
    (tmp_path / "ca.crt").write_bytes(b"not ours")  # a file the batch does not name stays as it is
    changed, _backups = _commit(tmp_path, _generation(1))
    assert changed == ["a.crt", "a.key", "b.crt", "b.key"]
    assert all(files.is_versioned_link(str(tmp_path / name)) for name in changed)
    assert _visible(tmp_path) == dict(_generation(1), **{"ca.crt": b"not ours"})
    assert not os.path.islink(str(tmp_path / "ca.crt"))
    assert len(_versions(tmp_path)) == 1
    assert _commit(tmp_path, _generation(1))[0] == []  # the rerun changes nothing


def test_migration_with_new_content_never_shows_a_mix(tmp_path, monkeypatch):
    """Plain files of generation 1 replaced by generation 2: at every rename of the
    commit the visible pairs are all of one generation."""
    for name, content in _generation(1).items():
        files.atomic_write(str(tmp_path / name), content, 0o600)
    (tmp_path / "a.key").chmod(0o600)
    real_rename = os.rename
    observed = []

    def watching_rename(source, target):
        real_rename(source, target)
        observed.append(_assert_consistent(tmp_path, (1, 2)))

    monkeypatch.setattr(os, "rename", watching_rename)
    _commit(tmp_path, _generation(2))
    monkeypatch.undo()
    assert observed[0] == 1 and observed[-1] == 2 and len(observed) >= 5
    assert _visible(tmp_path) == _generation(2)
    assert len(_versions(tmp_path)) == 1


def test_a_symlink_to_a_file_elsewhere_is_adopted_as_a_copy(tmp_path):
    outside = tmp_path / "elsewhere.crt"
    outside.write_bytes(b"cert a gen 1\n")
    directory = tmp_path / "d"
    directory.mkdir()
    os.symlink(str(outside), str(directory / "a.crt"))
    changed, _backups = _commit(directory, {"a.crt": b"cert a gen 1\n"})
    assert changed == ["a.crt"] and files.is_versioned_link(str(directory / "a.crt"))
    assert os.stat(str(directory / "a.crt")).st_ino != os.stat(str(outside)).st_ino
    outside.write_bytes(b"changed elsewhere")
    assert _visible(directory) == {"a.crt": b"cert a gen 1\n"}


def test_a_missing_visible_name_is_linked_again(tmp_path):
    _commit(tmp_path, _generation(1))
    os.unlink(str(tmp_path / "b.crt"))
    batch = files.VersionedBatch(str(tmp_path))
    assert batch.stage(str(tmp_path / "b.crt"), b"cert b gen 1\n", files.CERT_MODE, existing=None)
    batch.commit()
    assert files.is_versioned_link(str(tmp_path / "b.crt")) and _visible(tmp_path) == _generation(1)


def test_a_dangling_visible_symlink_is_replaced(tmp_path):
    _commit(tmp_path, _generation(1))
    os.unlink(str(tmp_path / "..data" / "b.crt"))  # the symlink b.crt now points to nothing
    os.unlink(str(tmp_path / "a.crt"))
    os.symlink("nowhere/a.crt", str(tmp_path / "a.crt"))
    batch = files.VersionedBatch(str(tmp_path))
    for name in ("a.crt", "b.crt"):
        assert batch.stage(str(tmp_path / name), b"cert %s gen 1\n" % name[0].encode(), files.CERT_MODE, existing=None)
    batch.commit()
    assert files.is_versioned_link(str(tmp_path / "a.crt")) and files.is_versioned_link(str(tmp_path / "b.crt"))
    assert _visible(tmp_path) == _generation(1)
    assert [name for name in os.listdir(str(tmp_path)) if name.endswith(".tmp")] == []


def test_names_outside_the_directory_are_refused(tmp_path):
    batch = files.VersionedBatch(str(tmp_path / "d"))
    with pytest.raises(files.FileError) as caught:
        batch.stage(str(tmp_path / "x.crt"), b"x", 0o644, field="dest_dir")
    assert caught.value.field == "dest_dir"
    with pytest.raises(files.FileError):
        batch.stage(str(tmp_path / "d" / "..data"), b"x", 0o644)


def test_abort_removes_the_new_version(tmp_path):
    _commit(tmp_path, _generation(1))
    before = _versions(tmp_path)
    with pytest.raises(RuntimeError):
        with files.VersionedBatch(str(tmp_path)) as batch:
            batch.stage(str(tmp_path / "a.crt"), b"x", 0o644)
            raise RuntimeError("validation failed later")
    assert _versions(tmp_path) == before and _visible(tmp_path) == _generation(1)


# --------------------------------------------------------------------------- failure at each step


@pytest.mark.parametrize("start", ["versioned", "plain"])
@pytest.mark.parametrize("function", ["fsync", "link", "symlink", "rename", "mkdir", "open", "write", "scandir"])
def test_a_failure_at_any_step_leaves_one_complete_set(tmp_path, monkeypatch, function, start):
    """Fail the n-th call of each system call the commit makes, for every n: the visible
    set is generation 1 or generation 2, never a mix, and no stray version remains."""
    calls = {"n": 0}
    failed_at = 0
    outcomes = set()
    for fail_at in range(1, 60):
        directory = tmp_path / ("run%d" % fail_at)
        directory.mkdir()
        if start == "versioned":
            _commit(directory, _generation(1, names=("a", "b", "c")))
            _commit(directory, {"c.crt": b"cert c gen 1\n", "c.key": b"key c gen 1\n"})
        else:
            for name, content in _generation(1, names=("a", "b", "c")).items():
                files.atomic_write(str(directory / name), content, 0o600 if name.endswith(".key") else 0o644)
        real = getattr(os, function)
        calls["n"] = 0

        def failing(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == fail_at:
                raise OSError(errno.EIO, "Input/output error (injected)")
            return real(*args, **kwargs)

        monkeypatch.setattr(os, function, failing)
        try:
            _commit(directory, dict(_generation(2), **{"c.crt": b"cert c gen 1\n", "c.key": b"key c gen 1\n"}))
            error = None
        except files.FileError as exc:
            error = exc
        monkeypatch.undo()
        seen = _visible(directory)
        generations = set()
        for name in ("a", "b"):
            generations.add(seen[name + ".crt"].split(b" gen ")[1])
            assert seen[name + ".key"].split(b" gen ")[1] == seen[name + ".crt"].split(b" gen ")[1], seen
        assert len(generations) == 1, "a mix is visible after a failure at %s #%d: %r" % (function, fail_at, seen)
        assert seen["c.key"] == b"key c gen 1\n"
        outcomes.add((error is not None, generations.pop()))
        current = files.current_version(str(directory))
        if error is not None:
            failed_at += 1
            assert "gen 2" not in str(error) and "gen 1" not in str(error)  # never file contents
            # Only the version ..data points to remains.
            assert _versions(directory) == ([current] if current else []), "stray versions: %r" % _versions(directory)
        else:
            # The commit went through; only the removal of the old version can have been
            # hit, which the next run's find_leftovers() finishes (see the leftovers tests).
            assert current in _versions(directory)
        if calls["n"] < fail_at:
            break  # this run made fewer calls than fail_at: every step has been failed once
    # A failing link() is no failure: the file is copied instead.
    assert failed_at or function == "link"
    assert (False, b"2\n") in outcomes
    if failed_at:
        assert (True, b"1\n") in outcomes  # failures before the switch keep the old set


# --------------------------------------------------------------------------- leftovers


def _dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_leftovers_of_killed_runs_are_found_and_removed(tmp_path):
    _commit(tmp_path, _generation(1))
    current = files.current_version(str(tmp_path))
    dead, alive = _dead_pid(), os.getppid()
    stale = ["..20260101T000000.000000Z.%d.0" % dead, "..data_tmp.%d.0" % dead, ".a.crt.%d.0.tmp" % dead, ".a.key.%d.3.tmp" % dead, ".probe.%d.probe" % dead]
    kept = ["..20260101T000000.000000Z.%d.0" % alive, ".a.crt.%d.0.tmp" % alive, ".hidden-by-user"]
    for name in stale + kept:
        if name.startswith("..2026"):
            os.mkdir(str(tmp_path / name))
            (tmp_path / name / "a.key").write_bytes(b"stale key")
        elif name.startswith("..data_tmp"):
            os.symlink(current, str(tmp_path / name))
        else:
            (tmp_path / name).write_bytes(b"x")
    assert files.find_leftovers(str(tmp_path)) == sorted(stale)
    before = sorted(os.listdir(str(tmp_path)))
    assert files.remove_leftovers(str(tmp_path), dry_run=True) == sorted(stale)
    assert sorted(os.listdir(str(tmp_path))) == before  # check mode removes nothing
    assert files.remove_leftovers(str(tmp_path)) == sorted(stale)
    assert sorted(set(before) - set(os.listdir(str(tmp_path)))) == sorted(stale)
    assert files.current_version(str(tmp_path)) == current and _visible(tmp_path) == _generation(1)
    assert files.find_leftovers(str(tmp_path)) == []


def test_the_current_version_is_never_a_leftover(tmp_path):
    _commit(tmp_path, _generation(1))
    current = files.current_version(str(tmp_path))
    dead_name = "..20200101T000000.000000Z.%d.0" % _dead_pid()
    os.rename(str(tmp_path / current), str(tmp_path / dead_name))
    os.unlink(str(tmp_path / "..data"))
    os.symlink(dead_name, str(tmp_path / "..data"))
    assert files.find_leftovers(str(tmp_path)) == []
    assert _visible(tmp_path) == _generation(1)


def test_leftovers_limited_to_names(tmp_path):
    dead = _dead_pid()
    for name in (".server.crt.%d.0.tmp" % dead, ".other.crt.%d.0.tmp" % dead):
        (tmp_path / name).write_bytes(b"x")
    assert files.find_leftovers(str(tmp_path), names=["server.crt"]) == [".server.crt.%d.0.tmp" % dead]


def test_a_directory_without_layout_has_no_version(tmp_path):
    assert files.current_version(str(tmp_path)) is None
    assert files.find_leftovers(str(tmp_path / "missing")) == []
    shutil.rmtree(str(tmp_path))
    assert files.find_leftovers(str(tmp_path)) == []


def test_only_staged_names_are_managed_other_files_and_subdirectories_untouched(tmp_path):
    (tmp_path / "other.txt").write_text("other\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.crt").write_text("x\n")
    os.symlink("other.txt", str(tmp_path / "other-link"))
    for content in (b"one", b"two"):
        with files.VersionedBatch(str(tmp_path)) as batch:
            batch.stage(str(tmp_path / "ca.crt"), content + b" cert", 0o644)
            batch.stage(str(tmp_path / "ca.key"), content + b" key", 0o600)
            batch.commit()
    assert sorted(os.listdir(str(tmp_path / files.DATA_LINK))) == ["ca.crt", "ca.key"]
    assert (tmp_path / "other.txt").read_text() == "other\n" and not os.path.islink(str(tmp_path / "other.txt"))
    assert os.readlink(str(tmp_path / "other-link")) == "other.txt"
    assert os.listdir(str(tmp_path / "sub")) == ["x.crt"]
    assert files.find_leftovers(str(tmp_path), names=["ca.crt", "ca.key"]) == []


def test_remove_versioned_removes_the_name_and_its_version_file(tmp_path):
    (tmp_path / "keep.txt").write_text("keep\n")
    with files.VersionedBatch(str(tmp_path)) as batch:
        batch.stage(str(tmp_path / "ca.crt"), b"cert", 0o644)
        batch.stage(str(tmp_path / "ca.key"), b"key", 0o600)
        batch.commit()
    result = files.remove_versioned(str(tmp_path / "ca.key"), backup=True, backup_mode=files.KEY_MODE)
    assert result.changed and open(result.backup_path, "rb").read() == b"key"
    assert _mode(result.backup_path) == 0o600
    assert os.listdir(str(tmp_path / files.DATA_LINK)) == ["ca.crt"]
    assert (tmp_path / "ca.crt").read_bytes() == b"cert"
    assert files.remove_versioned(str(tmp_path / "ca.crt")).changed
    assert sorted(os.listdir(str(tmp_path))) == sorted(["keep.txt", os.path.basename(result.backup_path)])
    assert files.remove_versioned(str(tmp_path / "ca.crt")).changed is False
    # A plain file is removed as files.remove() does.
    assert files.remove_versioned(str(tmp_path / "keep.txt")).changed
    assert not (tmp_path / "keep.txt").exists()


def test_same_directory(tmp_path):
    assert files.same_directory([str(tmp_path / "a"), str(tmp_path / "b"), None]) == str(tmp_path)
    assert files.same_directory([str(tmp_path / "a"), str(tmp_path / "sub" / "b")]) is None
