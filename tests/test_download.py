"""Paper-scale downloads against a real HTTP server on 127.0.0.1 (``http.server`` in a thread):
good download, wrong checksum, interrupted-then-resumed (with and without Range support),
HTTP errors, truncated / corrupt archives, atomic extraction (also under SIGKILL), missing
data root and missing Cityscapes credentials."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rankrepro.data.download import DownloadError, check_json, download, extract_zip, sha256_prefix_of

ROOT = Path(__file__).resolve().parents[1]


class LocalServer:
    """Serves the files of ``root`` on 127.0.0.1.  ``range_support``: answer ``Range: bytes=N-``
    with 206; ``drop_after``: the first ``drops`` responses send that many body bytes and close
    the connection (the Content-Length announced is the full one).  ``requests`` logs
    ``(path, Range header or None, status)``."""

    def __init__(self, root, range_support=True, drop_after=None, drops=1):
        self.root, self.range_support, self.drop_after, self.drops = Path(root), range_support, drop_after, drops
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = server.root / self.path.lstrip("/")
                header = self.headers.get("Range")
                if not path.is_file():
                    server.requests.append((self.path, header, 404))
                    self.send_error(404, "Not Found")
                    return
                data = path.read_bytes()
                start, status = 0, 200
                if header and server.range_support:
                    start = int(re.fullmatch(r"bytes=(\d+)-", header).group(1))
                    if start >= len(data):
                        server.requests.append((self.path, header, 416))
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    status = 206
                server.requests.append((self.path, header, status))
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if server.drop_after is not None and server.drops > 0:
                    server.drops -= 1
                    self.wfile.write(body[: server.drop_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name=""):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture()
def served(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    data = os.urandom(3 * 1024 * 1024 + 123)
    (root / "blob.bin").write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    return root, data, out


def test_good_download_verifies_renames_and_reports_progress(served, capsys):
    root, data, out = served
    with LocalServer(root) as server:
        record = download(server.url("blob.bin"), out / "blob.bin", sha256=sha256(data),
                          md5=hashlib.md5(data).hexdigest(), size=len(data), progress_s=0)
    assert (out / "blob.bin").read_bytes() == data
    assert not (out / "blob.bin.part").exists()
    assert record["sha256"] == sha256(data) and record["size"] == len(data) and record["requests"] == 1
    err = capsys.readouterr().err
    assert f"blob.bin: {len(data) / 1e6:.1f} MB / {len(data) / 1e6:.1f} MB (100.0%)" in err


def test_wrong_checksum_is_an_error_naming_the_file_and_leaves_nothing(served):
    root, data, out = served
    wrong = "0" * 64
    with LocalServer(root) as server, pytest.raises(DownloadError) as err:
        download(server.url("blob.bin"), out / "blob.bin", sha256=wrong, progress_s=None)
    message = str(err.value)
    assert "blob.bin" in message and "sha256 checksum mismatch" in message
    assert f"expected {wrong}" in message and f"got {sha256(data)}" in message
    assert list(out.iterdir()) == []  # neither the final name nor a .part


def test_wrong_size_is_an_error(served):
    root, data, out = served
    with LocalServer(root) as server, pytest.raises(DownloadError, match=f"expected {len(data) + 1} bytes, got {len(data)}"):
        download(server.url("blob.bin"), out / "blob.bin", size=len(data) + 1, progress_s=None)
    assert list(out.iterdir()) == []


def test_interrupted_download_keeps_part_and_the_next_run_resumes_with_range(served):
    root, data, out = served
    cut = 1_000_000
    with LocalServer(root, drop_after=cut) as server:
        with pytest.raises(DownloadError, match="connection .* after 1000000 .*resumes it"):
            download(server.url("blob.bin"), out / "blob.bin", sha256=sha256(data), retries=0, progress_s=None)
        assert not (out / "blob.bin").exists()
        assert (out / "blob.bin.part").read_bytes() == data[:cut]
        record = download(server.url("blob.bin"), out / "blob.bin", sha256=sha256(data), retries=0, progress_s=None)
    assert [r[1] for r in server.requests] == [None, f"bytes={cut}-"]
    assert [r[2] for r in server.requests] == [200, 206]
    assert (out / "blob.bin").read_bytes() == data and record["sha256"] == sha256(data)
    assert not (out / "blob.bin.part").exists()


def test_dropped_connection_is_retried_within_one_call_by_resuming(served):
    root, data, out = served
    with LocalServer(root, drop_after=500_000, drops=2) as server:
        record = download(server.url("blob.bin"), out / "blob.bin", sha256=sha256(data), retries=3,
                          progress_s=None, retry_wait_s=0)
    assert [r[1] for r in server.requests] == [None, "bytes=500000-", "bytes=1000000-"]
    assert record["requests"] == 3 and (out / "blob.bin").read_bytes() == data


def test_server_without_range_support_restarts_from_zero(served, capsys):
    root, data, out = served
    with LocalServer(root, range_support=False, drop_after=700_000) as server:
        record = download(server.url("blob.bin"), out / "blob.bin", sha256=sha256(data), retries=1,
                          progress_s=None, retry_wait_s=0)
    assert [r[1:] for r in server.requests] == [(None, 200), ("bytes=700000-", 200)]
    assert "restarting from byte 0" in capsys.readouterr().err
    assert (out / "blob.bin").read_bytes() == data and record["sha256"] == sha256(data)


def test_a_complete_part_is_verified_and_renamed(served):
    """A run killed between the last byte and the rename: the next asks the server for the byte
    after the end (416) and starts over, or with a known size renames without a request."""
    root, data, out = served
    (out / "blob.bin.part").write_bytes(data)
    with LocalServer(root) as server:
        download(server.url("blob.bin"), out / "blob.bin", sha256=sha256(data), size=len(data), progress_s=None)
    assert server.requests == [] and (out / "blob.bin").read_bytes() == data
    (out / "blob.bin").unlink()
    (out / "blob.bin.part").write_bytes(data)
    with LocalServer(root) as server:
        download(server.url("blob.bin"), out / "blob.bin", sha256=sha256(data), progress_s=None)
    assert [r[2] for r in server.requests] == [416, 200] and (out / "blob.bin").read_bytes() == data


def test_a_corrupt_part_fails_the_checksum_and_is_removed(served):
    root, data, out = served
    (out / "blob.bin.part").write_bytes(b"x" * 1000)  # not a prefix of the file
    with LocalServer(root) as server, pytest.raises(DownloadError, match="sha256 checksum mismatch"):
        download(server.url("blob.bin"), out / "blob.bin", sha256=sha256(data), progress_s=None)
    assert server.requests[0][1] == "bytes=1000-"
    assert list(out.iterdir()) == []


def test_http_error_and_unreachable_server_name_the_url(served):
    root, data, out = served
    with LocalServer(root) as server:
        with pytest.raises(DownloadError, match=r"/missing.zip: HTTP error 404 .*missing.zip"):
            download(server.url("missing.zip"), out / "missing.zip", progress_s=None)
        port = server.httpd.server_address[1]
    with pytest.raises(DownloadError, match=f"127.0.0.1:{port}/blob.bin: cannot connect"):
        download(f"http://127.0.0.1:{port}/blob.bin", out / "blob.bin", progress_s=None, retries=0)
    assert list(out.iterdir()) == []


def test_sha256_prefix_of_checkpoint_names_is_verified(tmp_path):
    weights = os.urandom(200_000)
    good = f"resnet-{sha256(weights)[:8]}.pth"
    bad = "resnet-0123abcd.pth"
    served = tmp_path / "served"
    served.mkdir()
    (served / good).write_bytes(weights)
    (served / bad).write_bytes(weights)
    assert sha256_prefix_of(good) == sha256(weights)[:8] and sha256_prefix_of("resnet50.pth") is None
    with LocalServer(served) as server:
        download(server.url(good), tmp_path / good, sha256_prefix=sha256_prefix_of(good), progress_s=None)
        with pytest.raises(DownloadError, match="expected a digest starting with 0123abcd"):
            download(server.url(bad), tmp_path / bad, sha256_prefix=sha256_prefix_of(bad), progress_s=None)
    assert (tmp_path / good).is_file() and not (tmp_path / bad).exists()


# -- archives ----------------------------------------------------------------------------

def make_zip(path, members: dict, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_extract_zip_puts_members_in_place_and_merges_folders(tmp_path):
    archive = tmp_path / "ann.zip"
    make_zip(archive, {"annotations/a.json": b'{"images": [1, 2]}', "annotations/b.json": b"{}"})
    dest = tmp_path / "coco"
    (dest / "annotations").mkdir(parents=True)
    (dest / "annotations" / "kept.json").write_text("{}")
    moved = extract_zip(archive, dest, ["annotations/a.json"])
    assert moved == ["annotations"]
    assert sorted(p.name for p in (dest / "annotations").iterdir()) == ["a.json", "b.json", "kept.json"]
    assert [p.name for p in dest.iterdir() if p.name.startswith(".")] == []
    assert check_json(dest / "annotations" / "a.json", ["images"]) == {"images": 2}
    with pytest.raises(DownloadError, match="b.json: missing key"):
        check_json(dest / "annotations" / "b.json", ["images"])


def test_truncated_zip_is_an_error_naming_it_and_extracts_nothing(tmp_path):
    data = make_zip(tmp_path / "full.zip", {"train2017/1.jpg": os.urandom(50_000)})
    truncated = tmp_path / "train2017.zip"
    truncated.write_bytes(data[: len(data) // 2])
    dest = tmp_path / "coco"
    with pytest.raises(DownloadError, match=r"train2017.zip: truncated or corrupt zip archive"):
        extract_zip(truncated, dest, ["train2017/"])
    assert list(dest.iterdir()) == []


def test_corrupt_member_leaves_no_member_in_place(tmp_path):
    """The first member extracts fine, the second fails its CRC: neither is in place (both
    went to the hidden temporary folder, which is removed)."""
    good, bad = os.urandom(40_000), os.urandom(40_000)
    data = bytearray(make_zip(tmp_path / "x.zip", {"val2017/1.jpg": good, "val2017/2.jpg": bad},
                              compression=zipfile.ZIP_STORED))
    offset = bytes(data).index(bad)
    data[offset + 100] ^= 0xFF
    archive = tmp_path / "val2017.zip"
    archive.write_bytes(bytes(data))
    dest = tmp_path / "coco"
    with pytest.raises(DownloadError, match=r"val2017.zip: truncated or corrupt zip archive .*CRC"):
        extract_zip(archive, dest, ["val2017/"])
    assert list(dest.iterdir()) == []


def test_extraction_killed_midway_leaves_only_the_hidden_folder_and_reruns(tmp_path):
    members = {f"train2017/{i:04d}.jpg": os.urandom(1 << 20) for i in range(150)}
    archive = tmp_path / "train2017.zip"
    make_zip(archive, members, compression=zipfile.ZIP_STORED)
    dest = tmp_path / "coco"
    dest.mkdir()
    code = ("import sys; from rankrepro.data.download import extract_zip; "
            "extract_zip(sys.argv[1], sys.argv[2], ['train2017/'])")
    proc = subprocess.Popen([sys.executable, "-c", code, str(archive), str(dest)])
    hidden = dest / ".train2017.zip.extracting" / "train2017"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (hidden.is_dir() and len(list(hidden.iterdir())) >= 5):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert [p.name for p in dest.iterdir()] == [".train2017.zip.extracting"]  # nothing that looks finished
    extract_zip(archive, dest, ["train2017/"])  # a rerun starts the extraction over
    assert sorted(p.name for p in dest.iterdir()) == ["train2017"]
    assert len(list((dest / "train2017").iterdir())) == 150


# -- the command line: data root, credentials, records ------------------------------------

def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "rankrepro.data.download", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env)


def test_missing_data_root_is_a_clear_error(tmp_path):
    proc = cli("fetch", "--data-root", str(tmp_path / "nope"), "train2017.zip")
    assert proc.returncode == 2
    assert f"data_root {tmp_path / 'nope'} is not a folder" in proc.stderr


def test_missing_cityscapes_credentials_fail_before_any_download(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYSCAPES_")}
    env["CITYSCAPES_USERNAME"] = "someone"
    proc = cli("fetch", "--data-root", str(tmp_path), "gtFine_trainvaltest.zip", env=env)
    assert proc.returncode == 2
    assert "set CITYSCAPES_PASSWORD in the environment; nothing was downloaded" in proc.stderr
    env.pop("CITYSCAPES_USERNAME")
    proc = cli("fetch", "--data-root", str(tmp_path), "leftImg8bit_trainvaltest.zip", env=env)
    assert "set CITYSCAPES_USERNAME and CITYSCAPES_PASSWORD" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no downloads/ folder, no staging folder


def test_fetch_and_extract_write_a_record_with_the_measured_checksums(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    data = make_zip(served / "val2017.zip", {"val2017/000000000001.jpg": os.urandom(10_000)})
    data_root = tmp_path / "data"
    data_root.mkdir()
    with LocalServer(served) as server:
        sources = tmp_path / "sources.yaml"
        sources.write_text(json.dumps({"datasets": {"coco": {"archives": [{
            "name": "val2017.zip", "url": "http://official.example/zips/val2017.zip", "sha256": sha256(data),
            "size": len(data), "checksum_source": "test", "extract_to": "coco", "provides": ["coco/val2017/"]}]}}}))
        mirror = f"http://official.example/zips/={server.url()}"
        proc = cli("fetch", "--data-root", str(data_root), "--sources", str(sources), "--mirror", mirror, "val2017.zip")
        assert proc.returncode == 0, proc.stderr
    assert server.requests == [("/val2017.zip", None, 200)]
    record = json.loads((data_root / "downloads/coco/val2017.zip.json").read_text())
    assert record["sha256"] == sha256(data) and record["size"] == len(data) and record["dataset"] == "coco"
    proc = cli("extract", "--data-root", str(data_root), "downloads/coco/val2017.zip", "--to", "coco",
               "--provides", "coco/val2017/", "coco/val2017/000000000002.jpg")
    assert proc.returncode == 2 and "val2017.zip: the archive does not hold val2017/000000000002.jpg" in proc.stderr
    assert not (data_root / "coco/val2017").exists()
    proc = cli("extract", "--data-root", str(data_root), "downloads/coco/val2017.zip", "--to", "coco",
               "--provides", "coco/val2017/")
    assert proc.returncode == 0, proc.stderr
    assert (data_root / "coco/val2017/000000000001.jpg").stat().st_size == 10_000


def test_csdownload_reads_the_account_from_the_environment_and_never_prompts(tmp_path):
    """csDownload (cityscapesscripts 2.2.4) runs with the account written for it from the
    environment: it gets past its credential prompt to the server.  Here that fails (no internet,
    or, with internet, a made-up account): a clear error naming the package, nothing under the
    final name."""
    from rankrepro.data.download import download_cityscapes

    env = dict(os.environ, CITYSCAPES_USERNAME="nobody@example.invalid", CITYSCAPES_PASSWORD="wrong")
    with pytest.raises(DownloadError) as err:
        download_cityscapes("gtFine_trainvaltest.zip", tmp_path / "gtFine_trainvaltest.zip", environ=env)
    message = str(err.value)
    assert message.startswith("gtFine_trainvaltest.zip: csDownload failed (exit 1): ")
    assert "EOFError" not in message and "username" not in message.lower()  # it did not prompt
    assert any(word in message for word in ("Bad credentials", "cityscapes-dataset.com")), message
    assert not (tmp_path / "gtFine_trainvaltest.zip").exists()
