"""Debian's arm64 packages, fetched with apt into a private state directory.

The host's apt configuration is never changed: every apt call gets its own lists,
cache, status file and sources list under the image cache. The mirror comes from
$HARNESS_DEBIAN_MIRROR or, failing that, from the host's own apt sources, so no
registry host name lives in this code.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from harness import cancel as cancelling
from harness.cancel import Cancel
from harness.errors import ImageBuildError

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
MIRROR_ENV = "HARNESS_DEBIAN_MIRROR"
# Release suites, as opposed to -security/-updates/-backports pockets.
_DEBIAN_SUITES = re.compile(
    r"^(buster|bullseye|bookworm|trixie|forky|duke|sid|oldstable|stable|testing|unstable)$"
)


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    depends: str


def find_mirror(env: Mapping[str, str], apt_etc: Path = Path("/etc/apt")) -> str:
    """The Debian mirror URI: configuration first, then the host's apt sources."""
    if env.get(MIRROR_ENV):
        return env[MIRROR_ENV].rstrip("/")
    for uri, suites in _host_sources(apt_etc):
        if any(_DEBIAN_SUITES.match(s) for s in suites):
            return uri.rstrip("/")
    raise ImageBuildError(
        f"no Debian mirror in {apt_etc}/sources.list*: set {MIRROR_ENV}=<mirror URI>"
    )


def probe_mirror(mirror: str, suites: Iterable[str], timeout_s: float = 3.0) -> str:
    """Asks the mirror for each suite's signed index (a HEAD of dists/<suite>/InRelease,
    else Release, as apt reads them), each within `timeout_s` seconds. Returns "" when
    it answers for every suite, else one line: the name does not resolve, the host
    does not answer, or a suite is missing (HTTP status)."""
    import requests

    from harness.images.http_parts import short

    for suite in suites:
        status = ""
        for index in ("InRelease", "Release"):
            url = f"{mirror}/dists/{suite}/{index}"
            if url.startswith("file:"):
                found = Path(urlsplit(url).path).is_file()
                status = "" if found else "no such file"
            else:
                try:
                    answer = requests.head(url, timeout=timeout_s, allow_redirects=True)
                except requests.Timeout:
                    return f"{mirror} does not answer within {timeout_s:g} s"
                except requests.RequestException as e:
                    if any(word in str(e) for word in _NO_NAME):
                        return f"{urlsplit(mirror).hostname} does not resolve ({mirror})"
                    return f"{mirror} does not answer: {short(e)}"
                status = "" if answer.ok else f"HTTP {answer.status_code}"
            if not status:
                break
        if status:
            return f"{mirror} has no dists/{suite}/InRelease nor Release ({status})"
    return ""


# The most of an InRelease read to compare it (trixie's is 140 KB).
MAX_INDEX = 4 << 20


def index_digest(mirror: str, suite: str, timeout_s: float = 10.0) -> str | None:
    """The sha256 of the mirror's dists/<suite>/InRelease as it is now (one request;
    the signed index names every Packages file, so the same digest is the same
    packages), or None when it cannot be had (no such file, no answer, too large)."""
    import requests

    url = f"{mirror}/dists/{suite}/InRelease"
    digest = hashlib.sha256()
    try:
        if url.startswith("file:"):
            with Path(urlsplit(url).path).open("rb") as f:
                data = f.read(MAX_INDEX + 1)
        else:
            with requests.get(url, timeout=timeout_s, stream=True) as answer:
                if not answer.ok:
                    return None
                data = answer.raw.read(MAX_INDEX + 1, decode_content=True)
    except (OSError, requests.RequestException):
        return None
    if len(data) > MAX_INDEX:
        return None
    digest.update(data)
    return digest.hexdigest()


# How the resolver's failure reads through requests and urllib3.
_NO_NAME = ("NameResolutionError", "Name or service not known", "name resolution", "resolve")


def _host_sources(apt_etc: Path) -> Iterator[tuple[str, list[str]]]:
    one_line = [apt_etc / "sources.list", *sorted((apt_etc / "sources.list.d").glob("*.list"))]
    for path in one_line:
        for line in _read_lines(path):
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                yield words[1], [words[2]]
    for path in sorted((apt_etc / "sources.list.d").glob("*.sources")):
        for stanza in _read_text(path).split("\n\n"):
            fields = _deb822_fields(stanza)
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                for uri in fields.get("uris", "").split():
                    yield uri, fields.get("suites", "").split()


def _deb822_fields(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = ""
    for line in stanza.splitlines():
        if line.startswith("#"):
            continue
        if line[:1].isspace() and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _read_lines(path: Path) -> list[str]:
    return _read_text(path).splitlines()


class Archive:
    """One Debian suite for one architecture (arm64: the guests' packages; the host's
    own for QEMU builds), with apt state kept under `root`. Each apt call stops (its
    process group with it) once `cancel` is set (harness/cancel.py)."""

    def __init__(
        self, root: Path, suite: str, mirror: str, arch: str = "arm64", cancel: Cancel = None
    ):
        self.root = root.resolve() / suite
        self.suite = suite
        self.mirror = mirror
        self.arch = arch
        self.debs = root.resolve() / "debs"
        self.cancel = cancel

    def _apt_options(self) -> list[str]:
        opts = {
            "APT::Architecture": self.arch,
            "APT::Architectures": self.arch,
            "Dir::State::Lists": str(self.root / "lists"),
            "Dir::State::status": str(self.root / "status"),
            "Dir::Cache": str(self.root / "cache"),
            "Dir::Etc::SourceList": str(self.root / "sources.list"),
            "Dir::Etc::SourceParts": str(self.root / "sources.list.d"),
            "Dir::Etc::Preferences": str(self.root / "preferences"),
            "Dir::Etc::PreferencesParts": str(self.root / "preferences.d"),
            "Debug::NoLocking": "1",
            "Acquire::Retries": "3",
        }
        if os.geteuid() == 0:
            # apt drops to the _apt user for downloads, who cannot write our cache.
            opts["APT::Sandbox::User"] = "root"
        return [arg for key, value in opts.items() for arg in ("-o", f"{key}={value}")]

    def _apt(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        argv = [tool, *self._apt_options(), *args]
        proc = cancelling.run(argv, self.cancel, text=True, cwd=cwd)
        check_child(tool, proc.returncode)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise ImageBuildError(f"{tool} {args[0]} failed for Debian {self.suite}: {last}")
        return proc.stdout

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def update(self) -> None:
        """Refreshes the package index (apt only downloads what changed)."""
        if not KEYRING.exists():
            raise ImageBuildError(f"{KEYRING} is missing: install debian-archive-keyring")
        with self._locked():
            for sub in ("lists/partial", "cache/archives/partial", "sources.list.d"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            (self.root / "status").touch()
            (self.root / "sources.list").write_text(
                f"deb [arch={self.arch} signed-by={KEYRING}] {self.mirror} {self.suite} main\n"
            )
            self._apt("apt-get", "update", "-q")

    def index_digest(self) -> str | None:
        """The sha256 of the InRelease the last `update` got (what apt resolves
        from), or None if there is none."""
        found = sorted((self.root / "lists").glob(f"*_dists_{self.suite}_InRelease"))
        if len(found) != 1:
            return None
        try:
            return hashlib.sha256(found[0].read_bytes()).hexdigest()
        except OSError:
            return None

    def packages(self, *names: str) -> dict[str, Package]:
        """The candidate versions of `names`, in one apt-cache call (each costs the
        parsing of the whole index)."""
        out = self._apt("apt-cache", "show", "--no-all-versions", *names)
        found = {}
        for stanza in out.split("\n\n"):
            fields = _deb822_fields(stanza)
            if "package" in fields and "version" in fields:
                found[fields["package"]] = Package(
                    fields["package"], fields["version"], fields.get("depends", "")
                )
        missing = [name for name in names if name not in found]
        if missing:
            raise ImageBuildError(
                f"Debian {self.suite} {self.arch} has no package {', '.join(missing)}"
            )
        return found

    def download(self, pkg: Package) -> Path:
        """The .deb file for `pkg`, downloaded once into the shared debs directory."""
        safe_version = pkg.version.replace(":", "%3a")
        target = self.debs / f"{pkg.name}_{safe_version}_{self.arch}.deb"
        if target.exists():
            return target
        self.debs.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.debs, prefix=".download-") as tmp:
            self._apt("apt-get", "download", "-q", f"{pkg.name}={pkg.version}", cwd=Path(tmp))
            (got,) = Path(tmp).glob("*.deb")
            os.replace(got, target)
        return target

    def download_with_dependencies(self, *names: str) -> dict[Package, Path]:
        """`names` and every package they depend on (Depends and Pre-Depends, not
        Recommends), as apt resolves them for an empty system, downloaded into this
        archive's apt cache: package -> .deb file. apt only fetches what it lacks."""
        args = ["install", "-q", "-y", "--no-install-recommends"]
        plan = self._apt("apt-get", *args, "--simulate", *names)
        # "Inst libc6 (2.41-12 Debian:13.1/stable [amd64])"
        wanted = [
            Package(m.group(1), m.group(2), "")
            for m in re.finditer(r"^Inst (\S+) (?:\[\S+\] )?\((\S+) ", plan, re.MULTILINE)
        ]
        with self._locked():
            self._apt("apt-get", *args, "--download-only", *names)
        archives = self.root / "cache" / "archives"
        found = {}
        for pkg in wanted:
            safe_version = pkg.version.replace(":", "%3a")
            debs = list(archives.glob(f"{pkg.name}_{safe_version}_*.deb"))
            if not debs:
                raise ImageBuildError(f"apt did not download {pkg.name} {pkg.version}")
            found[pkg] = debs[0]
        return found


def versioned_kernel(meta: Package) -> str | None:
    """The versioned kernel a metapackage such as linux-image-arm64 depends on."""
    match = re.search(r"(linux-image-[^\s,(|]+)", meta.depends)
    return match.group(1) if match else None


def extract(deb: Path, dest: Path, want: Callable[[str], bool], cancel: Cancel) -> list[str]:
    """Extracts the members of `deb` whose path `want` accepts; returns their paths.

    Raises ImageBuildError when dpkg-deb fails; an interruption (Ctrl-C on this
    thread, or `cancel` set, looked at before each member) stops dpkg-deb's process
    group and stays KeyboardInterrupt."""
    dpkg = subprocess.Popen(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, start_new_session=True
    )
    assert dpkg.stdout is not None
    taken: list[str] = []
    try:
        with tarfile.open(fileobj=dpkg.stdout, mode="r|") as tar:
            for member in tar:
                cancelling.check(cancel)
                name = os.path.normpath(member.name).lstrip("./")
                if member.isfile() and want(name):
                    source = tar.extractfile(member)
                    assert source is not None
                    out = dest / name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with out.open("wb") as sink:
                        shutil.copyfileobj(source, sink)
                    out.chmod(member.mode & 0o755 | 0o644)
                    taken.append(name)
    except BaseException as e:
        # Stopped here (an interruption, a bad archive): dpkg-deb is stopped too, and
        # the reason is this one, not dpkg-deb's end.
        cancelling.stop_group(dpkg)
        if isinstance(e, tarfile.TarError):
            check_child("dpkg-deb", dpkg.returncode)
            raise ImageBuildError(f"dpkg-deb gave no valid archive for {deb}: {e}") from e
        raise
    finally:
        dpkg.stdout.close()
    returncode = cancelling.wait(dpkg, cancel)
    assert returncode is not None  # no timeout
    check_child("dpkg-deb", returncode)
    if dpkg.returncode != 0:
        raise ImageBuildError(f"dpkg-deb could not read {deb}")
    return taken


def check_child(tool: str, returncode: int) -> None:
    """A child that died of SIGINT was Ctrl-C (the terminal sends it to the whole
    process group): raised as KeyboardInterrupt, as the harness's own Ctrl-C is,
    instead of being reported as the tool's failure."""
    if returncode == -signal.SIGINT:
        raise KeyboardInterrupt
    if returncode < 0:
        raise ImageBuildError(f"{tool} was killed by {signal.Signals(-returncode).name}")
