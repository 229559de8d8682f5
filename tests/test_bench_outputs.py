"""``stfusion bench``'s output folder: --overwrite never deletes what is not its own, names and
modes are checked before any work."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CIA, REPO, SHARED_DATA, bench_args, need
from stfusion.bench import check_bench_out, run_bench
from stfusion.cases import load_cases_file
from stfusion.errors import (
    InvalidParameterError,
    OutputExistsError,
)


def _cli(args: list[str], cwd: Path, umask: int | None = None) -> subprocess.CompletedProcess:
    """``stfusion ARGS`` as a real process (exit codes, cwd and umask are the process's own)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p
        ),
    }
    return subprocess.run(
        [sys.executable, "-m", "stfusion.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None,
    )


def _tree(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (relative path -> content, or '<dir>')."""
    return {
        str(p.relative_to(root)): "<dir>" if p.is_dir() else p.read_text(errors="replace")
        for p in sorted(root.rglob("*"))
    }


def test_bad_params_and_repeats(user_case: Path, tmp_path: Path) -> None:
    """A misspelt parameter or a bad value stops the bench before any work (exit 1, nothing
    written), not a "skipped" row with exit 0; a case or method named twice runs once."""
    mine = ("--cases-file", str(user_case), "--no-figures")
    for bad, said in (("starfm.nosuch=3", "no such parameter"), ("starfm.window=abc", "window")):
        p = _cli(
            bench_args("tiny", tmp_path / "o", *mine, "--param", bad, methods="starfm"),
            cwd=tmp_path,
        )
        assert p.returncode == 1 and said in p.stderr and "starfm" in p.stderr, p.stderr
        assert not (tmp_path / "o").exists()
    # A user trial: a weights file with a typo, or not a checkpoint, was a skipped row, exit 0
    not_ckpt = tmp_path / "w.ckpt"
    not_ckpt.write_text("not a checkpoint")
    for weights, said in (("nosuch.ckpt", "nosuch.ckpt"), (str(not_ckpt), "not a stfusion")):
        extra = ("-p", f"edcstfn.weights={weights}")
        p = _cli(bench_args("tiny", tmp_path / "o", *mine, *extra, methods="edcstfn"), cwd=tmp_path)
        assert p.returncode == 1 and said in p.stderr, p.stderr
        assert not (tmp_path / "o").exists()
    p = _cli(bench_args("tiny,tiny", tmp_path / "o", *mine, methods="starfm,starfm"), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(open(tmp_path / "o" / "runs.csv")))
    assert sorted(r["method"] for r in rows) == ["additive", "nochange", "starfm"]
    assert "figures/" not in p.stdout and "wrote " in p.stdout


def test_overwrite_refuses_cwd_and_deletes_nothing(tmp_path: Path) -> None:
    # The reproduction: bench --out . --overwrite deleted notes.txt and keep/.
    need(CIA)
    d = tmp_path / "d"
    (d / "keep").mkdir(parents=True)
    (d / "keep" / "f").write_text("x\n")
    (d / "notes.txt").write_text("y\n")
    before = _tree(tmp_path)
    p = _cli(
        bench_args("cia-1pair", ".", "--data-dir", str(SHARED_DATA), "--no-figures", "--overwrite"),
        cwd=d,
    )
    assert p.returncode == 1, p.stderr
    err = p.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("Error:") and "Traceback" not in err
    assert "current folder" in err
    assert _tree(tmp_path) == before  # nothing deleted, nothing left behind


def test_overwrite_refuses_folder_with_foreign_files(tmp_path: Path, user_case: Path) -> None:
    out = tmp_path / "somedir"
    out.mkdir()
    (out / "thesis.tex").write_text("months of work\n")
    before = _tree(tmp_path)
    mine = ("--cases-file", str(user_case), "--no-figures")
    p = _cli(bench_args("tiny", out, *mine, "--overwrite"), cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    err = p.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(out) in err and "thesis.tex" in err and "did not write" in err
    assert _tree(tmp_path) == before
    # Without --overwrite the message says the same (passing --overwrite would not help).
    p = _cli(bench_args("tiny", out, *mine), cwd=tmp_path)
    assert p.returncode == 1 and "thesis.tex" in p.stderr and "did not write" in p.stderr
    assert _tree(tmp_path) == before


def test_overwrite_replaces_own_previous_output(user_case: Path, tmp_path: Path) -> None:
    case = load_cases_file(user_case)["tiny"]
    out = tmp_path / "bench"
    run_bench([case], ["starfm"], out, params={"starfm": ["window=5"]})
    manifest = json.loads((out / ".stfusion-bench.json").read_text())
    written = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == written - {".stfusion-bench.json"}
    assert "figures/tiny_quicklook.png" in manifest["files"] and manifest["stfusion_version"]
    # Its own previous output is replaced, as a whole (figures/ gone with --no-figures).
    replaced = run_bench([case], [], out, overwrite=True, figures=False)
    assert not (out / "figures").exists()
    methods = {r["method"] for r in csv.DictReader(open(out / "runs.csv"))}
    assert methods == {"nochange", "additive"}
    # what the earlier output held that the new one does not: said (the CLI prints it)
    # and its figures/, which --no-figures did not write again (they were deleted unsaid)
    folders = {"figures": 2}
    assert replaced["dropped"] == {"cases": [], "methods": ["starfm"], "folders": folders}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bench.")]  # no temp left
    # A file of the output changed since bench wrote it: not stfusion's any more, refused.
    (out / "summary.md").write_text("my edits\n")
    with pytest.raises(OutputExistsError, match=r"summary\.md"):
        run_bench([case], [], out, overwrite=True, figures=False)
    assert (out / "summary.md").read_text() == "my edits\n"
    # An empty folder, or one that does not exist, is fine.
    (tmp_path / "empty").mkdir()
    run_bench([case], [], tmp_path / "empty", figures=False)
    run_bench([case], [], tmp_path / "new" / "deeper", figures=False)
    assert (tmp_path / "new" / "deeper" / "runs.csv").exists()


def test_manifest_naming_paths_outside_is_foreign(user_case: Path, tmp_path: Path) -> None:
    """A hand-edited (or received) manifest listing ``../x`` or ``/x`` deletes nothing there."""
    import hashlib

    case = load_cases_file(user_case)["tiny"]
    out = tmp_path / "bench"
    run_bench([case], [], out, figures=False)
    victims = [tmp_path / "victim.txt", tmp_path / "elsewhere" / "victim.txt"]
    victims[1].parent.mkdir()
    record = json.loads((out / ".stfusion-bench.json").read_text())
    for victim, rel in zip(victims, ["../victim.txt", str(victims[1])]):
        victim.write_text("precious\n")
        record["files"][rel] = {
            "bytes": 9,
            "sha256": hashlib.sha256(b"precious\n").hexdigest(),
        }
    record["dirs"].append("../elsewhere")
    (out / ".stfusion-bench.json").write_text(json.dumps(record))
    with pytest.raises(OutputExistsError, match="did not write"):
        run_bench([case], [], out, overwrite=True, figures=False)
    assert all(v.read_text() == "precious\n" for v in victims)
    assert (out / "runs.csv").exists()


def test_overwrite_refuses_home_root_inputs_and_cwd(
    user_case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = load_cases_file(user_case)["tiny"]
    home = tmp_path / "home"
    home.mkdir()
    before = _tree(tmp_path)
    with pytest.raises(OutputExistsError, match=r"input.*f1\.tif"):  # the folder of the inputs
        run_bench([case], [], tmp_path, overwrite=True, figures=False)
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(OutputExistsError, match="home folder"):
        run_bench([case], [], home, overwrite=True, figures=False)
    # Checked without run_bench: a regression must not get anywhere near replacing "/".
    with pytest.raises(OutputExistsError, match="is the root folder"):
        check_bench_out("/", [case], overwrite=True)
    with pytest.raises(OutputExistsError, match="is above the home folder"):
        check_bench_out(tmp_path, [], overwrite=True)
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    for out in (".", sub, tmp_path / "a"):
        with pytest.raises(OutputExistsError, match="current folder"):
            run_bench([case], [], out, overwrite=True, figures=False)
    assert {k: v for k, v in _tree(tmp_path).items() if not k.startswith("a")} == before
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "a")
    with pytest.raises(OutputExistsError, match="symbolic link"):
        run_bench([case], [], link, overwrite=True, figures=False)


# ----------------------------------------------------------- case names are safe file names


@pytest.mark.parametrize(
    "name",
    [
        "../../pwned",
        "/tmp/stfusion-pwned",
        "a/b",
        "..",
        ".hidden",
        "a..b",
        "-x",
        "x" * 65,
        "caf\u00e9",
        "a b",
        "",
    ],
)
def test_unsafe_case_names_refused(user_case: Path, name: str) -> None:
    bad = user_case.parent / "bad.toml"
    bad.write_text(user_case.read_text().replace("[cases.tiny]", f"[cases.{json.dumps(name)}]"))
    with pytest.raises(InvalidParameterError) as exc:
        load_cases_file(bad)
    msg = str(exc.value)
    assert str(bad) in msg and repr(name) in msg and "A-Za-z0-9" in msg
    ok = user_case.parent / "ok.toml"
    ok.write_text(user_case.read_text().replace("[cases.tiny]", '[cases."my-farm_2021.v2"]'))
    assert list(load_cases_file(ok)) == ["my-farm_2021.v2"]


def test_bad_case_name_refused_before_any_work(user_case: Path, tmp_path: Path) -> None:
    # Reported: "../../pwned" and an absolute name wrote PNGs outside --out (rc 0).
    work = tmp_path / "w" / "x"
    work.mkdir(parents=True)
    absname = str(tmp_path / "abs-pwned")
    bad = tmp_path / "bad.toml"
    spec = user_case.read_text().split("\n", 1)[1]
    bad.write_text(f'[cases."../../pwned"]\n{spec}\n[cases.{json.dumps(absname)}]\n{spec}')
    before = _tree(tmp_path)
    p = _cli(["bench", "--cases-file", str(bad), "--methods", "nochange", "--out", "res"], cwd=work)
    assert p.returncode == 1, p.stderr
    err = p.stderr.strip()
    assert len(err.splitlines()) == 1 and "../../pwned" in err and str(bad) in err
    assert _tree(tmp_path) == before  # nothing written, inside --out or outside it
    # A Case built in Python is checked by run_bench too, before any computation.
    evil = dataclasses.replace(load_cases_file(user_case)["tiny"], name="../up")
    with pytest.raises(InvalidParameterError, match=r"'\.\./up'"):
        run_bench([evil], [], tmp_path / "out")
    assert _tree(tmp_path) == before


# ------------------------------------------------------------------------------ modes


def test_bench_output_modes_respect_umask(user_case: Path, tmp_path: Path) -> None:
    out = tmp_path / "res"
    p = _cli(bench_args("tiny", out, "--cases-file", str(user_case)), cwd=tmp_path, umask=0o022)
    assert p.returncode == 0, p.stderr
    assert (out / "figures" / "tiny_quicklook.png").exists()
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))


def test_overwrite_without_figures_says_the_earlier_figures_are_gone(
    user_case: Path, tmp_path: Path
) -> None:
    """The earlier output's figures/, which a --no-figures rerun does not write again: the
    command says so, with the file count and the option that dropped them."""
    args = bench_args("tiny", "res", "--cases-file", str(user_case))
    assert _cli(args, cwd=tmp_path).returncode == 0
    p = _cli([*args, "--overwrite", "--no-figures"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "also held figures/ (2 files, --no-figures), which this run did not" in p.stderr
    assert not (tmp_path / "res" / "figures").exists()


def test_an_existing_output_folder_keeps_its_mode_and_group(
    user_case: Path, tmp_path: Path
) -> None:
    """A user trial: --out on an existing empty, private, setgid group folder (2770) came back
    755 and in the user's own group: the results were readable by everyone. The folder the
    bench writes in its place keeps the mode and group; a rerun with --overwrite too."""
    out = tmp_path / "res"
    out.mkdir()
    os.chmod(out, 0o2770)
    gid = os.getgid() if os.getuid() != 0 else 65534  # root may give it another group
    os.chown(out, -1, gid)
    args = bench_args("tiny", out, "--cases-file", str(user_case), "--no-figures")
    for extra in ([], ["--overwrite"]):
        p = _cli([*args, *extra], cwd=tmp_path, umask=0o022)
        assert p.returncode == 0, p.stderr
        st = out.stat()
        assert stat.S_IMODE(st.st_mode) == 0o2770 and st.st_gid == gid, oct(st.st_mode)
        assert (out / "summary.md").exists()


def test_earlier_output_moved_aside_by_a_killed_run_is_put_back(tmp_path: Path) -> None:
    """`bench --overwrite` killed (SIGKILL) between moving the earlier output aside and moving
    the new one in: the earlier output was only in `.out.PID-RAND.partial.old`, which the next
    run deleted as a stale partial, even without --overwrite. Now it is put back first."""
    first = _cli(bench_args("sample-cia-1pair", "out", "--no-figures"), tmp_path)
    assert first.returncode == 0, first.stderr
    before = _tree(tmp_path / "out")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its PID names no process now, as a killed run's
    aside = tmp_path / f".out.{child.pid}-0123abcd.partial.old"
    os.replace(tmp_path / "out", aside)
    again = _cli(bench_args("sample-cia-1pair", "out", "--no-figures"), tmp_path)
    assert again.returncode != 0 and "--overwrite" in again.stderr
    assert "put back the earlier output" in again.stderr
    assert _tree(tmp_path / "out") == before
    assert not aside.exists()


def test_a_mount_point_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial: an empty mounted volume as --out ran every method, then failed on renaming
    it into place (`[Errno 16] Device or resource busy`), nothing written."""
    from stfusion.bench import check_bench_out

    volume = tmp_path / "volume"
    volume.mkdir()
    real_ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == volume or real_ismount(p))
    with pytest.raises(OutputExistsError, match=r"is a mount point.*--out .*volume/bench"):
        check_bench_out(volume)
    assert check_bench_out(volume / "bench") == volume / "bench"
