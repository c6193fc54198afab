"""The installed package (issue 12): a real, non-editable ``pip install`` of qb2 into a fresh virtualenv.

How it is built, and why (fast, offline, and nothing lands in the repository):

- The source is a copy, under pytest's tmp_path, of the files git knows in the working tree
  (``git ls-files --cached --others --exclude-standard``: tracked files plus new, not ignored
  ones). setuptools builds in the source tree (``build/``, ``qb2.egg-info/``), so building from
  the repository itself would write there; the test checks that the repository's build outputs
  are untouched.
- The fresh virtualenv is ``python -m venv --without-pip`` (no ensurepip: fast). It is filled by
  the running interpreter's pip through ``pip --python NEW_VENV/bin/python install --no-deps
  SRC``: a real wheel build, then a normal install, no ``-e``.
- The build is pip's default isolated one: it needs ``setuptools>=68`` and ``wheel``
  (``[build-system]``), which this project's .venv does not have (its setuptools is older than
  the one that reads ``license = "Apache-2.0"``), so ``--no-build-isolation`` cannot work. pip
  takes them from the configured package index and local wheels, the same way ``make install``
  does for its own (editable) build, so wherever ``make install`` worked this works too.
- The heavy runtime dependencies are not installed again (``--no-deps``): a ``.pth`` file in the
  new site-packages names the running interpreter's site-packages. Python appends that path
  after the new site-packages, so the newly installed ``qb2`` is found first; a plain path line
  does not run the ``.pth`` files found there, so the project's editable finder
  (``__editable__.qb2-*.pth``) stays inactive in the new venv.

Every process runs with cwd = tmp_path and without PYTHONPATH, so the repository's folders are
not on ``sys.path``: whatever imports ``qb2`` imports the installed copy.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import site
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
#: The repository's top-level folders that are installed as ``qb2.<name>`` (pyproject ``package-dir``).
PACKAGES = ("compiler", "protocol", "daemon", "coordinator", "service_node", "client", "experiments", "migrations")
#: What a build writes in its source tree.
BUILD_OUTPUTS = ("build", "dist", "*.egg-info")

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]


class Installed:
    """The fresh virtualenv with qb2 installed in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.venv = root / "venv"
        self.python = self.venv / "bin" / "python"
        self.script = self.venv / "bin" / "qb2"
        self.site_packages = Path(subprocess.run(
            [str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True, cwd=root, env=clean_env(),
        ).stdout.strip())

    def dist_info(self) -> Path:
        found = list(self.site_packages.glob("qb2-*.dist-info"))
        assert len(found) == 1, found
        return found[0]

    def record(self) -> list[str]:
        """The installed paths listed in the dist's RECORD, relative to site-packages."""
        lines = (self.dist_info() / "RECORD").read_text().splitlines()
        return [line.rsplit(",", 2)[0] for line in lines if line.strip()]


def clean_env() -> dict[str, str]:
    """This environment minus what would put the repository, or another venv, on ``sys.path``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["COLUMNS"] = "200"  # typer's help box wraps at the terminal width
    return env


def build_outputs() -> dict[str, int]:
    """The repository's build outputs and their mtimes: a build in the repository changes them."""
    return {str(p.relative_to(REPO)): p.stat().st_mtime_ns for pattern in BUILD_OUTPUTS for p in REPO.glob(pattern)}


def copy_source(dest: Path) -> None:
    """Copy what git knows of the working tree (tracked and new, not ignored, files) to ``dest``."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout of the repository")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():  # a tracked file deleted in the working tree is skipped
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("install")
    before = build_outputs()
    src = root / "src"
    copy_source(src)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True, cwd=root)
    inst = Installed(root)
    deps = [p for p in dict.fromkeys(site.getsitepackages()) if Path(p).is_dir()]
    (inst.site_packages / "_qb2_test_deps.pth").write_text("".join(f"{p}\n" for p in deps))
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(inst.python), "install", "--no-deps", "--no-input",
         "--disable-pip-version-check", str(src)],
        cwd=root, env=clean_env(), capture_output=True, text=True, timeout=300,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert build_outputs() == before, "the install wrote build outputs into the repository"
    return inst


def test_the_distribution_installs_only_the_qb2_name(installed: Installed) -> None:
    record = installed.record()
    dist_info = installed.dist_info().name
    top: set[str] = set()
    scripts: set[Path] = set()
    for path in record:
        if path.startswith("../"):  # a script: ../../../bin/qb2 from lib/python3.11/site-packages
            scripts.add((installed.site_packages / path).resolve())
        else:
            top.add(path.split("/", 1)[0])
    assert top == {"qb2", dist_info}, top
    assert scripts == {installed.script.resolve()}, scripts
    assert (installed.dist_info() / "top_level.txt").read_text().split() == ["qb2"]
    for name in PACKAGES:  # none of the repository's folder names is importable on its own
        assert not (installed.site_packages / name).exists(), name
    assert not (installed.site_packages / "qb2" / "__init__.py").exists()  # qb2 stays a namespace package

    # every module of the source is in the wheel, as qb2.<folder>.<module> (a subpackage missing
    # from pyproject's ``packages`` would be silently left out)
    expected = {f"qb2/{p.relative_to(installed.root / 'src').as_posix()}"
                for name in PACKAGES for p in (installed.root / "src" / name).rglob("*.py")}
    assert expected, "no source modules found"
    missing = sorted(expected - set(record))
    assert not missing, f"modules missing from the installed wheel: {missing}"


def test_sql_migrations_are_installed_as_package_data(installed: Installed) -> None:
    versions = installed.site_packages / "qb2" / "migrations" / "versions"
    shipped = {p.name for p in (installed.root / "src" / "migrations" / "versions").glob("*.sql")}
    assert shipped, "the source has no migrations"
    assert {p.name for p in versions.glob("*.sql")} == shipped


def test_the_qb2_script_runs_and_lists_its_commands(installed: Installed) -> None:
    names = subprocess.run(  # the commands the installed app registers
        [str(installed.python), "-c", "import typer.main, qb2.client.cli as cli; "
         "print(*(n for n, c in typer.main.get_command(cli.app).commands.items() if not c.hidden))"],
        cwd=installed.root, env=clean_env(), capture_output=True, text=True, timeout=120,
    )
    assert names.returncode == 0, names.stderr
    commands = set(names.stdout.split())
    out = subprocess.run([str(installed.script), "--help"], cwd=installed.root, env=clean_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Usage: qb2" in out.stdout
    listed = {line.strip("│ ").split(" ", 1)[0] for line in out.stdout.splitlines()}
    assert {"up", "coordinator", "node", "db", "submit"} <= commands
    assert commands <= listed, f"not in `qb2 --help`: {sorted(commands - listed)}"


def test_imports_resolve_to_the_installed_copy_outside_the_repository(installed: Installed) -> None:
    code = ("import qb2, qb2.compiler, qb2.protocol, qb2.client, qb2.migrations; "
            "print(qb2.compiler.__file__); print(*qb2.__path__, sep='\\n')")
    out = subprocess.run([str(installed.python), "-c", code], cwd=installed.root, env=clean_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    compiler_file, *namespace = out.stdout.splitlines()
    assert Path(compiler_file).is_relative_to(installed.site_packages), compiler_file
    assert not Path(compiler_file).resolve().is_relative_to(REPO), compiler_file
    assert namespace == [str(installed.site_packages / "qb2")], namespace  # nothing else adds to qb2.*


def children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out.update(int(c) for c in (task / "children").read_text().split())
    return out


def read_first_line(proc: subprocess.Popen[str], timeout_s: float) -> str | None:
    """``proc``'s first stdout line, or None when none came within ``timeout_s`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    try:
        return lines.get(timeout=timeout_s)
    except queue.Empty:
        return None


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_installed_qb2_up_serves_the_api_and_stops_cleanly_on_sigterm(installed: Installed) -> None:
    data = installed.root / "data"
    stderr_path = installed.root / "up.stderr"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [str(installed.script), "up", "--nodes", "1", "--api-port", "0", "--data-dir", str(data)],
            cwd=installed.root, env=clean_env(), stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    daemons: set[int] = set()
    try:
        url = (read_first_line(proc, timeout_s=180) or "").strip()  # printed once the cluster is healthy
        assert url.startswith("http://127.0.0.1:"), f"first line {url!r}; stderr:\n{stderr_path.read_text()}"
        assert httpx.get(f"{url}/api/v1/health", timeout=10).status_code == 200
        daemons = children(proc.pid)
        argv = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in daemons}
        assert sorted(a[2].decode() for a in argv.values()) == ["qb2.coordinator", "qb2.service_node"], argv
        assert {a[0].decode() for a in argv.values()} == {str(installed.python)}, argv  # the daemons run the install
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, stderr_path.read_text()
        # qb2 up waits for its daemons before exiting: none may outlive it
        survivors = [pid for pid in daemons if Path(f"/proc/{pid}").exists()]
        assert not survivors, f"daemons outlived qb2 up: {survivors}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in daemons:  # never leave this test's own daemons behind, whatever failed
            if Path(f"/proc/{pid}").exists():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
