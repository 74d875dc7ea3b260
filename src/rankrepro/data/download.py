"""Paper-scale downloads: datasets and pretrained weights (``python -m rankrepro.data.download``).

What is fetched from where is ``configs/datasets.yaml`` (:mod:`rankrepro.data.sources`).
Everything here writes atomically, so an interrupted or failed step never leaves a file or
folder that looks finished:

* :func:`download`: HTTP(S) into ``<file>.part``, resumed with an HTTP ``Range`` request
  when a ``.part`` exists (restarted from byte 0 when the server ignores ``Range``), progress
  lines on stderr (at most one every ``progress_s`` seconds), size and checksum (md5, sha256
  or a sha256 prefix) verified *before* the ``.part`` is renamed to its final name.  A
  checksum mismatch deletes the ``.part`` (its bytes are wrong; resuming it cannot help).
* :func:`extract_zip`: into a hidden sibling folder ``.<archive>.extracting``, then renamed
  into place entry by entry (zip CRCs are checked while extracting; a truncated or corrupt
  archive is an error naming it and leaves nothing in place).
* :func:`download_cityscapes`: cityscapesscripts' ``csDownload`` (it verifies the server's
  md5 itself) with the credentials from ``CITYSCAPES_USERNAME`` / ``CITYSCAPES_PASSWORD``,
  checked before anything is downloaded; :func:`convert_cityscapes`: mmdet's converter to
  COCO-format annotation files.

Errors are :class:`DownloadError` (a :class:`rankrepro.errors.RankReproError`) with a message
naming the file or URL; the command line prints them and exits with status 2.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from ..atomic import write_json
from ..errors import RankReproError

#: Bytes read per chunk while downloading and hashing.
CHUNK = 1 << 20
#: Environment variables holding the Cityscapes account (https://www.cityscapes-dataset.com/register/).
CITYSCAPES_ENV = ("CITYSCAPES_USERNAME", "CITYSCAPES_PASSWORD")


class DownloadError(RankReproError):
    """A download, checksum, archive or credential problem; the message names the file or URL."""


# -- checksums ---------------------------------------------------------------------------

def _hash_file(path, hashes: dict) -> None:
    """Feed every byte of ``path`` to each of ``hashes`` (one read)."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            for h in hashes.values():
                h.update(block)


def _restart(hashes: dict) -> None:
    """Fresh hash objects in ``hashes`` (a download that starts again from byte 0)."""
    for name in hashes:
        hashes[name] = hashlib.new(name)


def file_digests(path, algorithms=("sha256", "md5")) -> dict:
    """Hex digests of ``path`` (one read)."""
    hashes = {a: hashlib.new(a) for a in algorithms}
    _hash_file(path, hashes)
    return {a: h.hexdigest() for a, h in hashes.items()}


def sha256_prefix_of(name: str) -> str | None:
    """The sha256 prefix in a torchvision / OpenMMLab checkpoint name
    (``resnet50-0676ba61.pth``, ``..._20200205-d4b0c5d6.pth``): the hex digits after the last
    ``-`` (torch.hub's ``check_hash`` convention), or None."""
    match = re.search(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$", name)
    return match.group(1) if match else None


def check_digests(path, digests: dict, *, md5=None, sha256=None, sha256_prefix=None, size=None, label=None) -> None:
    """Compare measured ``digests`` (and the file size) with the expected values; a mismatch
    raises :class:`DownloadError` with expected vs got."""
    label = label or str(path)
    got_size = Path(path).stat().st_size
    if size is not None and got_size != int(size):
        raise DownloadError(f"{label}: size mismatch: expected {int(size)} bytes, got {got_size}")
    for kind, expected, got in (("md5", md5, digests.get("md5")), ("sha256", sha256, digests.get("sha256"))):
        if expected and expected.lower() != got:
            raise DownloadError(f"{label}: {kind} checksum mismatch: expected {expected.lower()}, got {got}")
    if sha256_prefix and not digests["sha256"].startswith(sha256_prefix.lower()):
        raise DownloadError(f"{label}: sha256 checksum mismatch: expected a digest starting with "
                            f"{sha256_prefix.lower()}, got {digests['sha256']}")


# -- HTTP --------------------------------------------------------------------------------

class _Progress:
    """Throttled progress lines on stderr: ``name: 1.2 / 18.0 GB (6.7%), 45.1 MB/s``."""

    def __init__(self, label: str, total: int | None, start: int, every_s: float, stream=None):
        self.label, self.total, self.every_s = label, total, every_s
        self.stream = stream or sys.stderr
        self.t0 = self.last = time.monotonic()
        self.start = start

    def update(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < self.every_s:
            return
        self.last = now
        rate = (done - self.start) / max(now - self.t0, 1e-9) / 1e6
        total = f" / {self.total / 1e6:.1f} MB ({100 * done / self.total:.1f}%)" if self.total else ""
        self.stream.write(f"{self.label}: {done / 1e6:.1f} MB{total}, {rate:.1f} MB/s\n")
        self.stream.flush()


def _open(url: str, offset: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "rankrepro-download/1"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(request, timeout=timeout)


def _fetch_once(url: str, part: Path, hashes: dict, *, timeout: float, progress: _Progress | None,
                label: str, size: int | None) -> None:
    """One HTTP request into ``part`` (appending from its current size when the server honours
    ``Range``); ``hashes`` are updated with every byte ``part`` holds.  Raises on a dropped
    connection (``part`` keeps what arrived)."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset == size:
        return  # a complete .part from a run that died before renaming (download() hashed it)
    if size is not None and offset > size:  # longer than the file: cannot be a prefix of it
        part.unlink()
        _restart(hashes)
        offset = 0
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # the .part is larger than the file (or complete): start again
            part.unlink()
            _restart(hashes)
            response = _open(url, 0, timeout)
            offset = 0
        else:
            raise DownloadError(f"{url}: HTTP error {err.code} {err.reason} (downloading {label})") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise DownloadError(f"{url}: cannot connect ({getattr(err, 'reason', err)}) (downloading {label})") from None
    with response:
        mode = "ab"
        if offset and response.status != 206:
            # the server ignored Range and sends the whole file: start from byte 0
            print(f"{label}: the server does not resume (HTTP {response.status} to a Range request); "
                  "restarting from byte 0", file=sys.stderr)
            mode, offset = "wb", 0
            _restart(hashes)
        elif offset:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                raise DownloadError(f"{url}: asked for bytes {offset}- and got Content-Range {content_range!r} "
                                    f"(downloading {label})")
        length = response.headers.get("Content-Length")
        expected_end = offset + int(length) if length is not None else None
        if progress is not None and progress.total is None and expected_end is not None:
            progress.total = expected_end
        done = offset
        with open(part, mode) as f:
            while True:
                try:
                    block = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as err:
                    raise DownloadError(f"{url}: connection lost after {done} bytes ({err}); "
                                        f"{part} is kept and the next run resumes it") from None
                if not block:
                    break
                f.write(block)
                for h in hashes.values():
                    h.update(block)
                done += len(block)
                if progress is not None:
                    progress.update(done)
    if expected_end is not None and done < expected_end:
        raise DownloadError(f"{url}: connection closed after {done} of {expected_end} bytes; "
                            f"{part} is kept and the next run resumes it")


def download(url: str, dest, *, md5: str | None = None, sha256: str | None = None, sha256_prefix: str | None = None,
             size: int | None = None, retries: int = 3, timeout: float = 60.0, progress_s: float = 10.0,
             retry_wait_s: float = 2.0) -> dict:
    """Download ``url`` to ``dest``, resuming ``dest.part`` if present, verifying the size and
    the given checksums before renaming to ``dest``.  A dropped connection is retried
    ``retries`` times (each retry resumes with ``Range``).  Returns a record: url, file, size,
    sha256 and md5 as measured, the expected values and how many requests it took."""
    dest = Path(dest)
    if not dest.parent.is_dir():
        raise DownloadError(f"{dest}: the folder {dest.parent} does not exist")
    part = dest.with_name(dest.name + ".part")
    hashes = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    if part.exists():  # hash what an earlier run left, then continue from its end
        _hash_file(part, hashes)
        print(f"{dest.name}: resuming {part} at byte {part.stat().st_size}", file=sys.stderr)
    start = part.stat().st_size if part.exists() else 0
    progress = _Progress(dest.name, size, start, progress_s) if progress_s is not None else None
    requests = 0
    t0 = time.monotonic()
    for attempt in range(retries + 1):
        requests += 1
        try:
            _fetch_once(url, part, hashes, timeout=timeout, progress=progress, label=dest.name, size=size)
            break
        except DownloadError as err:
            if attempt == retries or "connection" not in str(err):
                raise
            print(f"{dest.name}: {err}; retrying ({attempt + 1}/{retries})", file=sys.stderr)
            time.sleep(retry_wait_s)
    elapsed = time.monotonic() - t0
    if progress is not None:
        progress.update(part.stat().st_size, final=True)
    digests = {name: h.hexdigest() for name, h in hashes.items()}
    try:
        check_digests(part, digests, md5=md5, sha256=sha256, sha256_prefix=sha256_prefix, size=size,
                      label=f"{dest} (from {url})")
    except DownloadError:
        part.unlink()  # wrong bytes: nothing to resume, nothing under the final name
        raise
    os.replace(part, dest)
    return {"url": url, "file": str(dest), "size": dest.stat().st_size, **digests,
            "expected": {k: v for k, v in (("md5", md5), ("sha256", sha256), ("sha256_prefix", sha256_prefix),
                                           ("size", size)) if v},
            "requests": requests, "seconds": round(elapsed, 3)}


# -- archives ----------------------------------------------------------------------------

def _move_into(src: Path, dest: Path) -> None:
    """Rename ``src`` (a file or folder) to ``dest``; a folder that exists there already is
    merged into (entry by entry, each a rename)."""
    if src.is_dir() and not src.is_symlink() and dest.is_dir():
        for child in sorted(src.iterdir()):
            _move_into(child, dest / child.name)
        src.rmdir()
    else:
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(src, dest)


def extract_zip(archive, dest_dir, provides=()) -> list[str]:
    """Extract ``archive`` into ``dest_dir`` atomically: everything lands first in the hidden
    sibling ``dest_dir/.<archive name>.extracting`` (CRCs checked while reading), and only a
    complete extraction is renamed into place.  ``provides`` (paths relative to ``dest_dir``)
    must exist afterwards.  Returns the top-level entries moved into place."""
    archive, dest_dir = Path(archive), Path(dest_dir)
    if not archive.is_file():
        raise DownloadError(f"{archive}: archive missing")
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = dest_dir / f".{archive.name}.extracting"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)  # each member's CRC is checked as it is read
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DownloadError(f"{archive}: truncated or corrupt zip archive ({type(err).__name__}: {err})") from None
    if tmp.exists():
        missing = [p for p in provides if not (tmp / p.rstrip("/")).exists()]
    else:
        missing = list(provides)
    if missing:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DownloadError(f"{archive}: the archive does not hold {', '.join(missing)}")
    entries = sorted(tmp.iterdir()) if tmp.exists() else []
    for entry in entries:
        _move_into(entry, dest_dir / entry.name)
    shutil.rmtree(tmp, ignore_errors=True)
    return [e.name for e in entries]


def check_json(path, keys=()) -> dict:
    """Parse ``path`` and check that it is an object holding ``keys``; returns counts of its
    list-valued keys (``images``, ``annotations``, ...)."""
    path = Path(path)
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise DownloadError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(data, dict):
        raise DownloadError(f"{path}: expected a JSON object, got {type(data).__name__}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise DownloadError(f"{path}: missing key(s) {', '.join(missing)}")
    return {k: len(v) for k, v in data.items() if isinstance(v, list)}


# -- Cityscapes --------------------------------------------------------------------------

def cityscapes_credentials(environ=None) -> tuple[str, str]:
    """The Cityscapes account from ``CITYSCAPES_USERNAME`` / ``CITYSCAPES_PASSWORD``; a clear
    error when either is unset (checked before any download starts)."""
    environ = os.environ if environ is None else environ
    missing = [name for name in CITYSCAPES_ENV if not environ.get(name)]
    if missing:
        raise DownloadError(
            f"Cityscapes needs an account (https://www.cityscapes-dataset.com/register/): set {' and '.join(missing)} "
            "in the environment; nothing was downloaded")
    return environ[CITYSCAPES_ENV[0]], environ[CITYSCAPES_ENV[1]]


def download_cityscapes(package: str, dest, environ=None) -> dict:
    """Download one Cityscapes package (e.g. ``gtFine_trainvaltest.zip``) to ``dest`` with
    cityscapesscripts' ``csDownload`` (it resumes with ``-r`` and verifies the md5 the server
    publishes for the package).  csDownload 2.2.4 reads the account from
    ``<appdirs user_data_dir>/credentials.json`` or prompts for it; here a private,
    temporary ``XDG_DATA_HOME`` holds that file (mode 0600), written from the environment, and
    stdin is closed, so it never prompts.  The package lands in ``dest``'s folder under
    ``.cityscapes-<package>/`` and is renamed to ``dest`` after csDownload succeeded."""
    user, password = cityscapes_credentials(environ)
    dest = Path(dest)
    if not dest.parent.is_dir():
        raise DownloadError(f"{dest}: the folder {dest.parent} does not exist")
    staging = dest.parent / f".cityscapes-{package}"
    staging.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rankrepro-cs-") as home:
        cred_dir = Path(home) / "cityscapesscripts"
        cred_dir.mkdir()
        fd = os.open(cred_dir / "credentials.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"username": user, "password": password}, f)
        env = dict(os.environ if environ is None else environ, XDG_DATA_HOME=home)
        cs = Path(sys.executable).with_name("csDownload")
        command = [str(cs) if cs.exists() else "csDownload", "-d", str(staging), "-r", package]
        returncode, tail = _run_forwarding_stderr(command, env)
    if returncode != 0:
        partial = staging / package
        kept = (f"; the partial {partial} ({partial.stat().st_size} bytes) is kept and the next run resumes it"
                if partial.is_file() else "")
        last = [line for line in tail.replace("\r", "\n").splitlines() if line.strip()][-1:] or [""]
        raise DownloadError(f"{package}: csDownload failed (exit {returncode}): {last[0].strip()}{kept}")
    os.replace(staging / package, dest)
    staging.rmdir()
    digests = file_digests(dest)
    return {"url": f"cityscapes-dataset.com package {package}", "file": str(dest), "size": dest.stat().st_size,
            **digests, "expected": {"md5": "the server's, checked by csDownload"}}


def _run_forwarding_stderr(command, env, keep: int = 4000) -> tuple[int, str]:
    """Run ``command`` (stdin closed) with its stderr passed through live (csDownload's
    progress bar) and its last ``keep`` characters kept for the error message."""
    proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tail = b""
    while True:
        block = proc.stderr.read1(4096)
        if not block:
            break
        sys.stderr.buffer.write(block) if hasattr(sys.stderr, "buffer") else sys.stderr.write(block.decode(errors="replace"))
        sys.stderr.flush()
        tail = (tail + block)[-keep:]
    return proc.wait(), tail.decode(errors="replace")


def convert_cityscapes(cityscapes_dir, nproc: int = 1) -> list[str]:
    """mmdet's converter (``tools/dataset_converters/cityscapes.py`` of the installed mmdet)
    -> ``annotations/instancesonly_filtered_gtFine_{train,val,test}.json``, written to a
    temporary folder and renamed into ``cityscapes_dir/annotations/`` (train and val must
    come out; test only where the test split has instance labels)."""
    import mmdet

    converter = Path(mmdet.__file__).parent / ".mim" / "tools" / "dataset_converters" / "cityscapes.py"
    root = Path(cityscapes_dir)
    for sub in ("leftImg8bit", "gtFine"):
        if not (root / sub).is_dir():
            raise DownloadError(f"{root / sub}: missing folder (extract the Cityscapes packages first)")
    out = root / "annotations"
    out.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=out))
    try:
        result = subprocess.run([sys.executable, str(converter), str(root), "--img-dir", "leftImg8bit",
                                 "--gt-dir", "gtFine", "-o", str(tmp), "--nproc", str(nproc)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise DownloadError(f"{converter} failed on {root} (exit {result.returncode}):\n{result.stderr[-2000:]}")
        written = sorted(p.name for p in tmp.glob("*.json"))
        for split in ("train", "val"):
            name = f"instancesonly_filtered_gtFine_{split}.json"
            if name not in written:
                raise DownloadError(f"{converter} wrote no {name} for {root}")
            check_json(tmp / name, ("images", "annotations", "categories"))
        for name in written:
            os.replace(tmp / name, out / name)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def verify_weights(sources, root) -> dict:
    """Hash every checkpoint of the weights list under ``root/weights/`` and check it against
    its published sha256 or the prefix in its name; returns the record the workflow keeps."""
    found, problems = {}, []
    for weight in sources.weights:
        path = Path(root) / "weights" / weight.name
        if not path.is_file():
            problems.append(f"{path}: missing (the workflow's download_weights rule, or "
                            f"python -m rankrepro.data.download weights --data-root {root} {weight.name})")
            continue
        digests = file_digests(path, ("sha256",))
        try:
            check_digests(path, digests, sha256=weight.sha256, sha256_prefix=weight.sha256_prefix, size=weight.size)
        except DownloadError as err:
            problems.append(str(err))
            continue
        found[weight.name] = {"size": path.stat().st_size, "sha256": digests["sha256"], "aliases": list(weight.aliases)}
    if problems:
        raise DownloadError("; ".join(problems))
    return {"weights_dir": str(Path(root) / "weights"), "files": found}


# -- command line --------------------------------------------------------------------------

def main(argv=None) -> int:
    from . import sources as src

    parser = argparse.ArgumentParser(prog="python -m rankrepro.data.download", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, what):
        p.add_argument("--data-root", required=True, help="the paper-scale data root (must exist)")
        p.add_argument("--sources", default=os.environ.get("RANKREPRO_SOURCES") or str(src.DEFAULT_SOURCES),
                       help="the sources YAML (default: $RANKREPRO_SOURCES, else configs/datasets.yaml)")
        p.add_argument("--mirror", action="append", default=None, metavar="OFFICIAL=MIRROR",
                       help="replace the URL prefix OFFICIAL by MIRROR (repeatable; default: the JSON object "
                       "in $RANKREPRO_MIRROR, which the workflow sets from its mirror config key)")
        p.add_argument(what)

    fe = sub.add_parser("fetch", help="download one archive of the sources YAML into DATA_ROOT/downloads/")
    common(fe, "archive")
    # extract / link take what they do as arguments, not the sources file or the mirror: the
    # workflow's rules then keep their parameters when a mirror or the sources path changes, and
    # Snakemake does not extract (and download) again what is in place.
    ex = sub.add_parser("extract", help="extract a downloaded zip into place (atomically)")
    ex.add_argument("--data-root", required=True)
    ex.add_argument("archive", help="the zip, relative to DATA_ROOT")
    ex.add_argument("--to", required=True, help="the folder to extract into, relative to DATA_ROOT")
    ex.add_argument("--provides", nargs="+", default=[], help="paths (relative to DATA_ROOT) that must exist after")
    ex.add_argument("--json-keys", default="{}", help='JSON {"path relative to DATA_ROOT": [keys]} to check')
    ln = sub.add_parser("link", help="make symlinks (LVIS v1 -> COCO's image folders) atomically")
    ln.add_argument("--data-root", required=True)
    ln.add_argument("links", nargs="+", metavar="LINK=TARGET", help="paths relative to DATA_ROOT")
    we = sub.add_parser("weights", help="download one checkpoint of the weights list into DATA_ROOT/weights/")
    common(we, "name")
    vw = sub.add_parser("verify-weights", help="check every cached checkpoint's sha256 (prefix); write a record")
    vw.add_argument("--data-root", required=True)
    vw.add_argument("--sources", default=os.environ.get("RANKREPRO_SOURCES") or str(src.DEFAULT_SOURCES))
    vw.add_argument("--out", required=True)
    cv = sub.add_parser("convert-cityscapes", help="mmdet's Cityscapes -> COCO-format converter")
    cv.add_argument("--data-root", required=True)
    cv.add_argument("--nproc", type=int, default=1)
    ur = sub.add_parser("url", help="download any URL with resume and checksum")
    ur.add_argument("url")
    ur.add_argument("out")
    ur.add_argument("--md5")
    ur.add_argument("--sha256")
    ur.add_argument("--sha256-prefix")
    ur.add_argument("--size", type=int)
    args = parser.parse_args(argv)
    try:
        if args.command == "url":
            record = download(args.url, args.out, md5=args.md5, sha256=args.sha256,
                              sha256_prefix=args.sha256_prefix, size=args.size)
            print(json.dumps(record))
            return 0
        root = src.check_data_root(args.data_root)
        if args.command == "convert-cityscapes":
            print("wrote", ", ".join(convert_cityscapes(root / "cityscapes", args.nproc)))
            return 0
        if args.command == "extract":
            extract_zip(root / args.archive, root / args.to, [os.path.relpath(p, args.to) for p in args.provides])
            for rel, keys in json.loads(args.json_keys).items():
                check_json(root / rel, keys)
            return 0
        if args.command == "link":
            src.make_links(dict(item.split("=", 1) for item in args.links), root)
            return 0
        if args.command == "verify-weights":
            write_json(args.out, verify_weights(src.load_sources(args.sources), root))
            return 0
        if args.mirror is not None:
            mirror = src.parse_mirror(args.mirror)
        else:
            try:
                mirror = json.loads(os.environ.get("RANKREPRO_MIRROR") or "{}")
            except ValueError as err:
                raise DownloadError(f"RANKREPRO_MIRROR is not a JSON object ({err})") from None
        sources = src.load_sources(args.sources, mirror=mirror)
        if args.command == "fetch":
            archive = sources.archive(args.archive)
            if archive.cityscapes_package:
                cityscapes_credentials()  # before anything else
            target = root / archive.download_path
            target.parent.mkdir(parents=True, exist_ok=True)
            if archive.cityscapes_package:
                record = download_cityscapes(archive.cityscapes_package, target)
            else:
                record = download(archive.url, target, md5=archive.md5, sha256=archive.sha256, size=archive.size)
            record.update(dataset=archive.dataset, checksum_source=archive.checksum_source)
            write_json(root / archive.record_path, record)
        elif args.command == "weights":
            weight = sources.weight(args.name)
            target = root / "weights" / weight.name
            target.parent.mkdir(parents=True, exist_ok=True)
            record = download(weight.url, target, sha256=weight.sha256, sha256_prefix=weight.sha256_prefix,
                              size=weight.size)
            record.update(aliases=list(weight.aliases))
            write_json(root / "weights" / "records" / f"{weight.name}.json", record)
    except RankReproError as err:
        print(f"rankrepro.data.download {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
