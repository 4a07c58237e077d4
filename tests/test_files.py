"""The one write helper: atomic, exclusive, never through a planted link, never over an input."""

import os
import stat

import pytest

from paracnn import files
from paracnn.checkpoint import save_checkpoint
from paracnn.files import CannotWrite, append_line, check_can_write, write_atomic


def save(path, weights):
    return save_checkpoint(path, config={"train": {"seed": 1}}, weights=weights,
                           optimizer={"type": "sgd", "momentum_buffer": None}, epoch=1, step=2)


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "last.json"
    save(path, [1.0, 2.0])
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError):
        save(path, [3.0, 4.0])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.json"]  # no temp file left


def test_atomic_write_fsyncs_file_and_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    write_atomic(tmp_path / "a" / "x.txt", "hello")
    assert (tmp_path / "a" / "x.txt").read_text() == "hello"
    assert len(synced) == 2


def test_a_link_planted_at_the_target_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "out.safetensors").symlink_to(victim)
    write_atomic(tmp_path / "out.safetensors", b"new")
    assert victim.read_text() == "keep"
    assert not (tmp_path / "out.safetensors").is_symlink()
    assert (tmp_path / "out.safetensors").read_bytes() == b"new"


def test_links_planted_at_every_old_temporary_name_are_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    for name in (".out.tmp", ".out.safetensors.tmp", "out.tmp"):
        (tmp_path / name).symlink_to(victim)
    write_atomic(tmp_path / "out.safetensors", b"new")
    assert victim.read_text() == "keep"


def test_an_input_of_the_command_is_never_replaced_under_any_name(tmp_path):
    source = tmp_path / "last.json"
    source.write_text("weights")
    (tmp_path / "alias.json").symlink_to(source)
    for target in (source, tmp_path / "alias.json", tmp_path / "." / "last.json"):
        with pytest.raises(CannotWrite, match="is an input of this command"):
            write_atomic(target, "x", inputs=[source])
    assert source.read_text() == "weights"


def test_without_overwrite_an_existing_file_is_refused_and_kept(tmp_path):
    (tmp_path / "out").write_text("old")
    with pytest.raises(CannotWrite, match="already exists; .* --overwrite"):
        write_atomic(tmp_path / "out", "new", overwrite=False)
    assert (tmp_path / "out").read_text() == "old"
    write_atomic(tmp_path / "new", "fresh", overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "out"]


def test_every_file_gets_the_one_mode_less_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "a", "x")
        append_line(tmp_path / "b.jsonl", "{}")
    finally:
        os.umask(old)
    for name in ("a", "b.jsonl"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == files.FILE_MODE & ~0o027


def test_append_line_does_not_follow_a_planted_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / "metrics.jsonl").symlink_to(victim)
    with pytest.raises(OSError):
        append_line(tmp_path / "metrics.jsonl", "{}")
    assert victim.read_text() == "keep\n"


def test_an_output_whose_folder_is_missing_is_refused_before_any_work(tmp_path):
    with pytest.raises(CannotWrite, match="the folder .*nodir does not exist; create it first"):
        check_can_write(tmp_path / "nodir" / "p.json")
    with pytest.raises(CannotWrite, match="it is a folder"):
        check_can_write(tmp_path)
