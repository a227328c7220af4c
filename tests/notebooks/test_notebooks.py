"""Every notebook in notebooks/ runs top to bottom without error (so none of them rots),
renders its figures inline, and cleans up its temporary run directories."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The notebook executes in a fresh kernel with no cell raising, its figures come out as
    inline PNGs, and it leaves nothing in the temp directory."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel inherits it: tempfile uses it
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel imports this checkout's code
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no inline figure"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("ridesim-")]
