"""Tests for minirl/plot.py: one PNG from several runs; missing runs fail before drawing."""
import pytest

from minirl.logger import TrainingLog
from minirl.plot import plot_runs


def _run(tmp_path, name, scale):
    d = tmp_path / name
    d.mkdir()
    log = TrainingLog(d / "progress.csv")
    for i in range(1, 5):
        log(None, {"steps": 100 * i, "iteration": i, "episode_returns": [scale * i],
                   "episode_lengths": [i]})
    log.close()
    return d


def test_plot_runs_writes_png(tmp_path):
    runs = [_run(tmp_path, "a", 1.0), _run(tmp_path, "b", 2.0)]
    out = plot_runs(runs, tmp_path / "c.png", title="t")
    assert out.read_bytes()[:4] == b"\x89PNG"
    plot_runs([runs[0] / "progress.csv"], tmp_path / "d.png", y="episode_length_mean")


def test_missing_run_or_column(tmp_path):
    with pytest.raises(FileNotFoundError):
        plot_runs([tmp_path / "missing"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="nope"):
        plot_runs([_run(tmp_path, "a", 1.0)], tmp_path / "x.png", y="nope")
    assert not (tmp_path / "x.png").exists()


# -- rows without a finite value: skipped, never a silently blank plot ------------------------

@pytest.fixture
def drawn(monkeypatch):
    """Every figure ``minirl plot`` saves: {label: (x, y, marker)} of its lines and its
    texts, recorded just before the PNG is written."""
    import minirl.plot

    figures = []
    real = minirl.plot.save_figure

    def spy(fig, path, **kwargs):
        ax = fig.axes[0]
        figures.append({
            "lines": {ln.get_label(): (ln.get_xdata().tolist(), ln.get_ydata().tolist(),
                                       ln.get_marker()) for ln in ax.get_lines()},
            "texts": [t.get_text() for t in ax.texts]})
        return real(fig, path, **kwargs)

    monkeypatch.setattr(minirl.plot, "save_figure", spy)
    return figures


def _log(path, rows):
    """A progress CSV from (steps, episode returns, extra metrics) rows, as training writes it."""
    log = TrainingLog(path, fields=("eval_return_mean", "eval_return_std"))
    for i, (steps, rets, extra) in enumerate(rows, start=1):
        log(None, {"steps": steps, "iteration": i, "episode_returns": rets,
                   "episode_lengths": [1] * len(rets), **extra})
    log.close()


def test_cli_plot_draws_through_the_finite_points_and_the_evaluation_curve(tmp_path, capsys,
                                                                            drawn):
    from minirl.cli import main

    run = tmp_path / "run"
    run.mkdir()
    # no episode finished in the first two iterations (return_mean_100 empty); evaluations
    # at 200 and 400 only (eval columns empty elsewhere)
    _log(run / "progress.csv", [
        (100, [], {}), (200, [], {"eval_return_mean": 5.0, "eval_return_std": 1.0}),
        (300, [2.0], {}), (400, [4.0], {"eval_return_mean": 7.0, "eval_return_std": 0.5}),
        (500, [], {})])
    assert main(["plot", str(run), "--out", str(tmp_path / "c.png")]) == 0
    assert capsys.readouterr().err == ""
    lines = drawn[-1]["lines"]
    assert lines["run"][:2] == ([300.0, 400.0, 500.0], [2.0, 3.0, 3.0])
    assert lines["run: deterministic evaluation"][:2] == ([200.0, 400.0], [5.0, 7.0])
    assert drawn[-1]["texts"] == []


def test_cli_plot_names_a_run_with_nothing_finite_instead_of_a_blank_png(tmp_path, capsys,
                                                                          drawn):
    from minirl.cli import main

    empty, one, diverged = (tmp_path / n for n in ("empty", "one", "diverged"))
    for d in (empty, one, diverged):
        d.mkdir()
    _log(empty / "progress.csv", [(100, [], {}), (200, [], {})])
    _log(one / "progress.csv", [(100, [], {}), (200, [3.0], {})])
    (diverged / "progress.csv").write_text(
        "steps,return_mean_100\n100,1.5\n200,inf\n300,\n400,2.5\n")
    assert main(["plot", str(empty), str(one), str(diverged),
                 "--out", str(tmp_path / "c.png")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("minirl: note: ") for e in err)
    assert "empty: nothing to plot, no finite return_mean_100" in err[0]
    assert "no episode finished" in err[0]
    assert "diverged: 1 row(s) with an infinite return_mean_100 skipped" in err[1]
    fig = drawn[-1]
    assert "empty" not in fig["lines"]
    assert fig["lines"]["one"] == ([200.0], [3.0], "o")   # one point: a marker, not invisible
    assert fig["lines"]["diverged"][:2] == ([100.0, 400.0], [1.5, 2.5])
    assert "empty: nothing to plot" in fig["texts"][0] and "diverged: 1 row" in fig["texts"][0]
    # only the empty run: no line, the note in the middle of the axes, still exit 0
    assert main(["plot", str(empty), "--out", str(tmp_path / "e.png")]) == 0
    assert drawn[-1]["lines"] == {} and "empty: nothing to plot" in drawn[-1]["texts"][0]
    assert (tmp_path / "e.png").read_bytes()[:4] == b"\x89PNG"


def test_a_trained_run_without_finished_episodes_at_first_plots_its_curves(tmp_path, capsys,
                                                                            drawn):
    """Through training: MountainCar episodes last 200 steps, so the first 128-step iteration
    has no return; the training curve starts at 256 and the evaluation curve at 128, in both
    the run's curve.png and ``minirl plot``."""
    from minirl.cli import main

    out = tmp_path / "mc"
    assert main(["train", "ppo", "--env", "MountainCar-v0", "--steps", "384", "--quiet",
                 "--out", str(out), "--set", "num_envs=1", "--set", "num_steps=128",
                 "--set", "minibatch_size=64", "--set", "hidden_sizes=8",
                 "--eval-every", "128", "--eval-episodes", "1"]) == 0
    assert main(["plot", str(out), "--out", str(tmp_path / "c.png")]) == 0
    capsys.readouterr()
    assert len(drawn) == 2 and drawn[0]["lines"] == drawn[1]["lines"]  # curve.png, plot
    lines = drawn[1]["lines"]
    assert lines["mc"][:2] == ([256.0, 384.0], [-200.0, -200.0])
    assert lines["mc: deterministic evaluation"][:2] == ([128.0, 256.0, 384.0], [-200.0] * 3)


def test_cli_plot_out_an_existing_directory_writes_inside_it(tmp_path, capsys, monkeypatch):
    """--out DIR (an existing directory) writes DIR/curves.png, the default plot name (was:
    DIR.png beside it); a missing parent directory is one line, exit 2, nothing written; the
    Python API (plot_runs) does the same."""
    from minirl.cli import main
    from minirl.plot import plot_runs
    run = tmp_path / "run"
    run.mkdir()
    (run / "progress.csv").write_text("steps,return_mean_100\n1,2\n2,3\n")
    figs = tmp_path / "figs"
    figs.mkdir()
    for out in (str(figs), str(figs) + "/"):
        assert main(["plot", str(run), "--out", out]) == 0
        assert capsys.readouterr().out.strip() == f"wrote {figs / 'curves.png'}"
        assert (figs / "curves.png").read_bytes()[:4] == b"\x89PNG"
        assert not (tmp_path / "figs.png").exists()
        (figs / "curves.png").unlink()
    monkeypatch.chdir(figs)
    assert main(["plot", str(run), "--out", "."]) == 0
    assert (figs / "curves.png").is_file()
    missing = tmp_path / "nowhere" / "c.png"
    assert main(["plot", str(run), "--out", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == (f"minirl: error: --out {missing}: the directory "
                                               f"{missing.parent} does not exist")
    assert not missing.parent.exists()
    assert plot_runs([run], figs) == figs / "curves.png"
    with pytest.raises(FileNotFoundError, match="nowhere does not exist"):
        plot_runs([run], missing)
    # --help says so
    with pytest.raises(SystemExit):
        main(["plot", "--help"])
    assert "existing directory gets curves.png inside it" in " ".join(
        capsys.readouterr().out.split())
