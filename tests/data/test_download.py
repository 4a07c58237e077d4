"""Downloading from a local HTTP server on 127.0.0.1: streamed, bounded, checked, nothing left behind."""

import os

import mnist
import pytest

from paracnn.data import FILES, ensure_dataset, load_datasets, write_fake_dataset
from paracnn.data.download import download_file
from paracnn.errors import DataError


@pytest.fixture
def mirror_files(tmp_path):
    """A folder of fake files to serve, and their hashes."""
    hashes = write_fake_dataset(tmp_path / "served", train_size=20, test_size=6, seed=5)
    return tmp_path / "served", hashes


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_fills_the_cache_then_uses_it(clean_env, serve, mirror_files):
    served, hashes = mirror_files
    url, requests = serve(served)
    default_url = mnist.datasets_url
    folder = ensure_dataset("mnist", mirror=url, checksums=hashes)
    assert folder == clean_env / "mnist"
    assert _leftovers(folder) == sorted(FILES)  # no temporary folders left
    for fname in FILES:
        assert (folder / fname).read_bytes() == (served / fname).read_bytes()
    assert sorted(requests) == sorted(f"/{f}" for f in FILES)
    # The second time nothing is fetched.
    assert ensure_dataset("mnist", mirror=url, checksums=hashes) == folder
    assert len(requests) == 4
    assert mnist.datasets_url == default_url  # the mnist package's global is restored


def test_load_datasets_downloads_from_config_mirror(clean_env, serve, mirror_files):
    served, hashes = mirror_files
    url, _ = serve(served)
    sets = load_datasets({"dataset": "fashion-mnist", "mirror": url.rstrip("/")}, checksums=hashes)
    assert (len(sets.train), len(sets.test)) == (20, 6)
    assert sets.source == str(clean_env / "fashion-mnist")


def test_env_mirror_is_used_and_config_mirror_wins(clean_env, serve, mirror_files, monkeypatch):
    served, hashes = mirror_files
    env_url, env_requests = serve(served)
    cfg_url, cfg_requests = serve(served)
    monkeypatch.setenv("PARACNN_MIRROR", env_url)
    ensure_dataset("mnist", mirror=cfg_url, checksums=hashes)
    assert (len(cfg_requests), len(env_requests)) == (4, 0)
    ensure_dataset("fashion-mnist", checksums=hashes)
    assert len(env_requests) == 4


def test_only_missing_files_are_downloaded(clean_env, serve, mirror_files):
    served, hashes = mirror_files
    url, requests = serve(served)
    cached = clean_env / "mnist"
    cached.mkdir(parents=True)
    for fname in FILES[:3]:
        (cached / fname).write_bytes((served / fname).read_bytes())
    ensure_dataset("mnist", mirror=url, checksums=hashes)
    assert requests == [f"/{FILES[3]}"]


def test_html_error_page_gives_data_error_and_leaves_nothing(clean_env, serve, mirror_files):
    served, hashes = mirror_files
    url, _ = serve(served, mode="html")
    with pytest.raises(DataError) as err:
        load_datasets({"dataset": "mnist", "mirror": url}, checksums=hashes)
    message = str(err.value)
    assert f"{url}train-images-idx3-ubyte.gz" in message and "HTML page" in message
    assert "PARACNN_MIRROR" in message and "\n" not in message
    assert not clean_env.exists()  # not even the cache folder the download created


def test_short_download_gives_data_error(clean_env, serve, mirror_files):
    served, hashes = mirror_files
    url, _ = serve(served, mode="short")
    with pytest.raises(DataError, match="download failed") as err:
        ensure_dataset("mnist", mirror=url, checksums=hashes)
    assert "train-images-idx3-ubyte.gz" in str(err.value)
    assert _leftovers(clean_env / "mnist") == []


def test_missing_file_on_server_gives_data_error(clean_env, serve, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    url, _ = serve(empty)
    with pytest.raises(DataError, match="404") as err:
        ensure_dataset("mnist", mirror=url)
    assert f"{url}train-images-idx3-ubyte.gz" in str(err.value)


def test_official_checksums_reject_other_files(clean_env, serve, mirror_files):
    """Fake files served under the real name fail the built-in MNIST hashes and are not kept."""
    served, _ = mirror_files
    url, _ = serve(served)
    with pytest.raises(DataError, match="SHA-256") as err:
        ensure_dataset("mnist", mirror=url)
    assert "train-images-idx3-ubyte.gz" in str(err.value)
    assert _leftovers(clean_env / "mnist") == []


def test_download_file_replaces_atomically(clean_env, serve, mirror_files, tmp_path):
    served, hashes = mirror_files
    url, _ = serve(served)
    target = tmp_path / "dest"
    path = download_file(FILES[1], target, url, hashes[FILES[1][:-3]])
    assert path == target / FILES[1] and os.listdir(target) == [FILES[1]]


def test_unwritable_cache_is_a_data_error(clean_env, serve, mirror_files, monkeypatch, tmp_path):
    served, hashes = mirror_files
    url, _ = serve(served)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("PARACNN_CACHE_DIR", str(blocker))
    with pytest.raises(DataError, match="PARACNN_CACHE_DIR"):
        ensure_dataset("mnist", mirror=url, checksums=hashes)


def test_a_download_larger_than_any_dataset_file_is_cut_off_and_leaves_nothing(clean_env, serve, mirror_files,
                                                                               monkeypatch):
    from paracnn.data import download
    served, hashes = mirror_files
    url, _ = serve(served)
    size = (served / FILES[0]).stat().st_size
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", size - 1)
    with pytest.raises(DataError, match=rf"{FILES[0]}: download failed \(the server announces {size:,} "
                                        rf"bytes, more than the {size - 1:,} a dataset file may have\)"):
        ensure_dataset("mnist", mirror=url, checksums=hashes)
    assert not clean_env.exists()


def test_a_cache_folder_that_existed_is_kept_after_a_failed_download(clean_env, serve, mirror_files):
    served, hashes = mirror_files
    url, _ = serve(served, mode="html")
    (clean_env / "mnist").mkdir(parents=True)
    with pytest.raises(DataError):
        ensure_dataset("mnist", mirror=url, checksums=hashes)
    assert _leftovers(clean_env / "mnist") == []


def test_plain_http_is_refused_for_a_file_without_a_known_checksum(clean_env, serve, mirror_files):
    served, _ = mirror_files
    url, requests = serve(served)
    assert url.startswith("http://")
    with pytest.raises(DataError, match=rf"{FILES[1]}: refusing to download over plain http a file whose "
                                        rf"SHA-256 is not known; use an https mirror"):
        download_file(FILES[1], clean_env / "x", url, sha256=None)
    assert requests == [] and not clean_env.exists()
