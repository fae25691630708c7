"""tasks.py (the newcomer's entry point): the commands it builds, without running them."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tasks(monkeypatch):
    spec = importlib.util.spec_from_file_location("tasks_under_test", ROOT / "tasks.py")
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    calls = []
    monkeypatch.setattr(tasks, "ensure_venv", lambda extras: None)
    monkeypatch.setattr(tasks, "_run", lambda cmd, **kw: calls.append([str(c) for c in cmd]) or 0)
    return tasks, calls


def test_bench_peers_installs_the_pinned_cpu_torch_first_then_the_other_peers(monkeypatch):
    tasks, calls = _tasks(monkeypatch)
    assert tasks.main(["bench", "--peers", "--only", "nn"]) == 0
    torch, peers, bench = calls
    # PyPI's Linux torch wheel is the CUDA build: torch comes from PyTorch's CPU index, pinned
    assert torch[-3:] == ["torch==2.13.0", "--index-url", "https://download.pytorch.org/whl/cpu"]
    assert torch[1:4] == ["-m", "pip", "install"]
    assert peers[-3:] == ["stable-baselines3==2.9.2", "tianshou==2.0.1", "cpprb==11.0.0"]
    assert "--index-url" not in peers and not any(a.startswith("torch") for a in peers)
    assert bench[1:] == ["-m", "benchmarks", "--only", "nn"]


def test_bench_without_peers_installs_nothing(monkeypatch):
    tasks, calls = _tasks(monkeypatch)
    assert tasks.main(["bench", "--quick"]) == 0
    assert [c[1:] for c in calls] == [["-m", "benchmarks", "--quick"]]
